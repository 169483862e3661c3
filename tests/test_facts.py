"""The quality bench's fact enumerator and matcher (tests/facts.py) on real specs of
tests/data/openapi/ and hand-made Markdown: no node, no model."""

from __future__ import annotations

from pathlib import Path

from facts import Fact, Spec, load, parts, rendered

DATA = Path(__file__).parent / "data" / "openapi"
FIND = "GET /pet/findByStatus"

PETSTORE_DOC = """# Swagger Petstore

Base URL: http://petstore.swagger.io/v2

## pet

### `GET /pet/findByStatus`

| parameter | in | values |
|---|---|---|
| `status` | query | available, pending, sold (default: available) |

```json
[{"id": 0, "category": {"id": 0, "name": "string"}, "photoUrls": [], "tags": []}]
```

Returns an array of [Pet](#pet).

### `GET /pet/findByTags`

| parameter | in |
|---|---|
| `tags` | query |

## Schemas

### Pet

| field | type |
|---|---|
| `id` | integer |
| `name` | string |
| `photoUrls` | array |
| `status` | string: available, pending or sold |
"""


def test_a_petstore_operation_s_facts_are_listed_with_where_they_belong() -> None:
    facts = Spec(load(DATA / "petstore-3.1.yaml")).facts()
    assert Fact(None, "server", "servers", "http://petstore.swagger.io/v2") in facts
    mine = {(f.kind, f.where, f.value, f.schema) for f in facts if f.operation == FIND}
    assert {("enum", "status[]", v, None) for v in ("available", "pending", "sold")} <= mine
    assert ("default", "status[]", "available", None) in mine
    # response fields through $ref, nested ones named by their path
    assert ("response field", "[].photoUrls", "photoUrls", "Pet") in mine
    assert ("response field", "[].category.name", "name", "Category") in mine
    assert len(facts) == len(set(facts))


def test_the_matcher_finds_what_each_part_states_and_nothing_else() -> None:
    facts = Spec(load(DATA / "petstore-3.1.yaml")).facts()
    shown = set(rendered(PETSTORE_DOC, facts))
    find = {(f.kind, f.where, f.value) for f in shown if f.operation == FIND}
    assert {("enum", "status[]", "available"), ("enum", "status[]", "sold"),
            ("default", "status[]", "available")} <= find
    # stated in the Pet section the operation links to; the example does not count
    assert {("response field", "[].photoUrls", "photoUrls"),
            ("enum", "[].status", "pending")} <= find
    assert ("response field", "[].category", "category") not in find
    assert ("response field", "[].category.name", "name") not in find  # Category: no section
    assert Fact(None, "server", "servers", "http://petstore.swagger.io/v2") in shown
    # an operation the document never names states nothing
    assert not [f for f in shown if f.operation == "POST /pet"]
    # findByTags' part ends before the Schemas heading: nothing of Pet's is taken there
    tags_part = parts(PETSTORE_DOC, ["GET /pet/findByTags"])["GET /pet/findByTags"]
    assert "Schemas" not in tags_part and "`tags`" in tags_part


def test_a_swagger_2_spec_is_read_as_it_is() -> None:
    spec = Spec(load(DATA / "jupyter-server.yaml"))
    names = [name for name, _, _ in spec.operations()]
    assert len(names) == 32 and "GET /api/kernels/{kernel_id}" in names
    facts = spec.facts()
    contents = {(f.kind, f.value) for f in facts if f.operation == "GET /api/contents/{path}"}
    assert {("enum", "file"), ("enum", "notebook"), ("response field", "last_modified")} \
        <= contents
    assert not [f for f in facts if f.kind == "server"]  # no host: no base URL to state


def test_an_operation_s_part_starts_at_its_title_not_at_a_mention() -> None:
    doc = ("Start with GET /pet/findByStatus: it lists pets.\n\n"
           "### `GET /pet/findByStatus`\n\n| `status` | available |\n")
    assert parts(doc, [FIND])[FIND].startswith("GET /pet/findByStatus`\n")


def test_a_path_that_is_the_start_of_another_is_not_taken_for_it() -> None:
    doc = "### `GET /pet/{petId}/uploadImage`\n\nnothing\n\n### `GET /pet`\n\npets\n"
    found = parts(doc, ["GET /pet", "GET /pet/{petId}/uploadImage"])
    assert found["GET /pet"].startswith("GET /pet`") and "pets" in found["GET /pet"]
