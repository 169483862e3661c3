"""Request bodies a route reads itself (for speed, or to take JSON and files alike), as
its OpenAPI operation shows them: FastAPI documents only the bodies it parses, and a
schema named in `openapi_extra` is not added to the document's components."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


def inline_schema(model: type[BaseModel],
                  mode: Literal["validation", "serialization"] = "validation"
                  ) -> dict[str, Any]:
    """The model's JSON schema with its nested definitions put in place (the schema
    sits in the operation, where `#/$defs/...` would not resolve)."""
    schema = model.model_json_schema(mode=mode)
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)  # type: ignore[no-any-return]


def request_body(**schemas: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` of a required body, by media type."""
    return {"requestBody": {"required": True, "content": {
        media_type: {"schema": schema} for media_type, schema in schemas.items()}}}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    return request_body(**{"application/json": inline_schema(model)})
