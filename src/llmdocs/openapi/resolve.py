"""Inlining local `$ref`s without letting a spec expand without end."""

from __future__ import annotations

from typing import Any

from llmdocs.openapi.load import SpecError


class Resolver:
    """Inlines local `$ref`s. A reference back into its own chain is cut and marked
    (a recursive schema stays finite), nesting beyond `max_depth` is cut, and the total
    of inlined values is capped so that references cannot expand exponentially."""

    def __init__(self, doc: dict[str, Any], max_depth: int, budget: int) -> None:
        self.doc = doc
        self.max_depth = max_depth
        self.budget = budget
        self.warnings: set[str] = set()

    def target(self, ref: str) -> Any:
        node: Any = self.doc
        for part in ref[2:].split("/"):
            key = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                raise KeyError(ref)
        return node

    def follow(self, node: Any, pointer: str) -> tuple[Any, str]:
        """The value behind a chain of `$ref`s and its JSON pointer; a reference that
        leaves the document, points nowhere or comes back to itself is a `SpecError`."""
        seen: list[str] = []
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if not ref.startswith("#"):
                raise SpecError(f"$ref {ref[:200]} at {pointer or '/'} leaves the document; "
                                "only references within it are followed")
            if ref in seen:
                raise SpecError("$ref cycle: " + " → ".join([*seen, ref])[:500])
            seen.append(ref)
            try:
                node = self.target(ref) if ref != "#" else self.doc
            except KeyError:
                raise SpecError(f"$ref {ref[:200]} at {pointer or '/'} points nowhere "
                                "in the document") from None
            pointer = ref[1:]
        return node, pointer

    def check_refs(self) -> None:
        """Every `$ref` in the document followed once: one that leaves it, points nowhere
        or only to itself is a `SpecError` before any work is done on the document."""
        refs: set[str] = set()
        stack: list[Any] = [self.doc]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if isinstance(node.get("$ref"), str):
                    refs.add(node["$ref"])
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        for ref in sorted(refs):
            self.follow({"$ref": ref}, "")

    def resolve(self, node: Any, chain: tuple[str, ...] = (), depth: int = 0) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise SpecError("the spec's schemas expand beyond the limit once $refs are "
                            "inlined")
        if depth > self.max_depth:
            self.warnings.add(f"schemas nested deeper than {self.max_depth} levels were cut")
            return {"description": "(nested too deep; cut)"}
        if isinstance(node, list):
            return [self.resolve(item, chain, depth + 1) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return {key: self.resolve(value, chain, depth + 1) for key, value in node.items()}
        if ref in chain:
            return {"description": f"(recursive: {ref})"}
        if not ref.startswith("#/"):
            self.warnings.add(f"external $ref {ref} not followed")
            return {"description": f"(external: {ref})"}
        try:
            target = self.target(ref)
        except KeyError:
            self.warnings.add(f"$ref {ref} points nowhere")
            return {"description": f"(unresolved: {ref})"}
        resolved = self.resolve(target, (*chain, ref), depth + 1)
        siblings = {k: self.resolve(v, chain, depth + 1) for k, v in node.items() if k != "$ref"}
        return {**resolved, **siblings} if isinstance(resolved, dict) else resolved
