"""The API diff on a large spec, and on the mutation corpus, beside api-smart-diff.

A generated spec of 6 operations per resource (2,100 with the default 350 resources)
whose bodies and responses share schemas (each resource's, a page, an audit record and
the error every operation answers), and a head version with ten of each change: an
operation removed and one added, a required query parameter added, an enum value
removed from a parameter, a field removed from and a maxLength lowered in a resource's
schema, a summary reworded, an operation secured, and one optional field added to the
shared error schema (a change on every operation).

Each tool diffs the two JSON files in a process of its own, round after round in turns:
llmdocs (`llmdocs.openapi.diff.diff`, after `parse_spec`) and api-smart-diff 1.0.6
(`apiDiff(before, after)`, after `JSON.parse`, with node; installed under
~/.cache/llmdocs/api-smart-diff when missing). Printed: the median time of the diff
call alone, of the whole process, its peak memory (ru_maxrss), the changes found, how
many breaking, and on how many operations; then the ratio of the diff times.

Then the mutation corpus of the tests (tests/openapi/diffcorpus.py: every rule applied
alone to six real specs): for each rule, on how many specs each tool reports a change,
and on how many the breaking verdict is the rule's.

Usage: .venv/bin/python bench/diff.py [--resources 350] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import npm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from llmdocs.openapi import SpecBounds, parse_spec  # noqa: E402
from llmdocs.openapi.diff import diff  # noqa: E402
from openapi.diffcorpus import MUTATIONS, parsed, sources, versions  # noqa: E402

ASD = "api-smart-diff@1.0.6"
NODE_RUNNER = """
const {apiDiff} = require(process.argv[2]);
const fs = require("fs");
const read = (file) => JSON.parse(fs.readFileSync(file, "utf8"));
if (process.argv[3] === "pair") {
  const before = read(process.argv[4]), after = read(process.argv[5]);
  const started = process.hrtime.bigint();
  const found = apiDiff(before, after);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const breaking = found.filter((d) => d.type === "breaking");
  const ops = new Set(breaking.filter((d) => d.path[0] === "paths" && d.path.length > 2)
    .map((d) => String(d.path[2]).toUpperCase() + " " + d.path[1]));
  console.log(JSON.stringify({seconds, changes: found.length, breaking: breaking.length,
                              operations: ops.size}));
} else {
  console.log(JSON.stringify(read(process.argv[4]).map(([before, after]) => {
    const found = apiDiff(before, after);
    return {found: found.length > 0, breaking: found.some((d) => d.type === "breaking")};
  })));
}
"""
TOOLS = ("llmdocs", "api-smart-diff")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK.") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def generate(resources: int) -> dict[str, Any]:
    """A spec of 6 operations per resource, every body and response a shared schema."""
    schemas: dict[str, Any] = {
        "Error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "integer"}, "message": {"type": "string"}}},
        "Page": {"type": "object", "properties": {"next": {"type": "string"},
                                                  "total": {"type": "integer"}}},
        "Audit": {"type": "object", "properties": {
            "created_at": {"type": "string", "format": "date-time"},
            "created_by": {"type": "string"}}}}
    paths: dict[str, Any] = {}
    errors = {"default": _json(_ref("Error"), "An error.")}
    for r in range(resources):
        name = f"Thing{r}"
        schemas[name] = {"type": "object", "required": ["id", "name"], "properties": {
            "id": {"type": "string", "format": "uuid", "readOnly": True},
            "name": {"type": "string", "maxLength": 100},
            "status": {"type": "string", "enum": ["new", "active", "gone"]},
            "count": {"type": "integer", "minimum": 0},
            "tags": {"type": "array", "items": {"type": "string"}},
            "audit": _ref("Audit")}}
        schemas[f"{name}List"] = {"type": "object", "properties": {
            "items": {"type": "array", "items": _ref(name)}, "page": _ref("Page")}}
        body = {"required": True, "content": {"application/json": {"schema": _ref(name)}}}
        paths[f"/things{r}"] = {
            "get": {"operationId": f"list{r}", "summary": f"List things {r}", "parameters": [
                {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 100}},
                {"name": "order", "in": "query", "schema": {"type": "string",
                                                            "enum": ["asc", "desc"]}}],
                    "responses": {"200": _json(_ref(f"{name}List")), **errors}},
            "post": {"operationId": f"create{r}", "summary": f"Create a thing {r}",
                     "requestBody": body, "responses": {"201": _json(_ref(name)), **errors}}}
        one: dict[str, Any] = {"parameters": [{"name": "id", "in": "path", "required": True,
                                               "schema": {"type": "string"}}]}
        for method in ("get", "put", "patch", "delete"):
            one[method] = {"operationId": f"{method}{r}", "summary": f"{method} a thing {r}",
                           "responses": {"200": _json(_ref(name)), **errors}}
            if method in ("put", "patch"):
                one[method]["requestBody"] = body
        paths[f"/things{r}/{{id}}"] = one
    return {"openapi": "3.0.3", "info": {"title": "Things", "version": "1"}, "paths": paths,
            "components": {"schemas": schemas, "securitySchemes": {
                "key": {"type": "apiKey", "in": "header", "name": "X-Key"}}}}


def changed(base: dict[str, Any]) -> dict[str, Any]:
    """The head version: ten of each change (see the module's docstring)."""
    head = json.loads(json.dumps(base))
    paths, schemas = head["paths"], head["components"]["schemas"]
    for i in range(10):
        del paths[f"/things{i}/{{id}}"]["delete"]
        paths[f"/extra{i}"] = {"get": {"responses": {"204": {"description": "Done."}}}}
        paths[f"/things{10 + i}"]["get"]["parameters"].append(
            {"name": "tenant", "in": "query", "required": True, "schema": {"type": "string"}})
        paths[f"/things{20 + i}"]["get"]["parameters"][1]["schema"]["enum"] = ["asc"]
        del schemas[f"Thing{30 + i}"]["properties"]["count"]
        schemas[f"Thing{40 + i}"]["properties"]["name"]["maxLength"] = 50
        paths[f"/things{50 + i}"]["get"]["summary"] = f"List every thing {50 + i}"
        paths[f"/things{60 + i}"]["post"]["security"] = [{"key": []}]
    schemas["Error"]["properties"]["trace"] = {"type": "string"}
    return head


def measure(command: list[str]) -> tuple[dict[str, Any], float, float]:
    """The command's JSON answer, its wall time and its peak memory in MB."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert process.stdout is not None
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if process.returncode:
        raise SystemExit(f"{command[:3]} failed with {process.returncode}")
    return json.loads(out), wall, usage.ru_maxrss / 1024


def ours(base: Path, head: Path) -> None:
    """The child process of the llmdocs side: parse both, time the diff, print figures."""
    bounds = SpecBounds(max_spec_bytes=50_000_000, max_spec_nodes=5_000_000)
    before, after = (parse_spec(p.read_bytes(), bounds) for p in (base, head))
    started = time.perf_counter()
    found = diff(before, after, bounds)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "changes": len(found.changes),
                      "breaking": found.summary.breaking,
                      "operations": len({c.operation for c in found.changes if c.breaking})}))


def large(resources: int, rounds: int, runner: list[str], folder: Path) -> None:
    base = generate(resources)
    files = folder / "base.json", folder / "head.json"
    files[0].write_text(json.dumps(base))
    files[1].write_text(json.dumps(changed(base)))
    operations = sum(len([k for k in item if k != "parameters"]) for item in base["paths"].values())
    print(f"spec: {operations} operations, {len(base['components']['schemas'])} schemas, "
          f"{files[0].stat().st_size / 1e6:.1f} MB as JSON; {rounds} rounds\n")
    commands = {"llmdocs": [sys.executable, __file__, "--ours", *map(str, files)],
                "api-smart-diff": [*runner, "pair", *map(str, files)]}
    runs: dict[str, list[tuple[dict[str, Any], float, float]]] = {t: [] for t in TOOLS}
    for n in range(rounds):
        for tool in TOOLS if n % 2 == 0 else TOOLS[::-1]:  # in turns: a busy machine slows both
            runs[tool].append(measure(commands[tool]))
    print("| tool | diff s | process s | peak MB | changes | breaking | operations broken |")
    print("|---|---|---|---|---|---|---|")
    medians: dict[str, float] = {}
    for tool in TOOLS:
        answer = runs[tool][-1][0]
        medians[tool] = statistics.median(r[0]["seconds"] for r in runs[tool])
        print(f"| {tool} | {medians[tool]:.3f} | "
              f"{statistics.median(r[1] for r in runs[tool]):.2f} | "
              f"{statistics.median(r[2] for r in runs[tool]):.0f} | {answer['changes']} | "
              f"{answer['breaking']} | {answer['operations']} |")
    same = runs["llmdocs"][-1][0]["breaking"] == runs["api-smart-diff"][-1][0]["breaking"]
    print(f"\ndiff time, api-smart-diff / llmdocs: "
          f"{medians['api-smart-diff'] / medians['llmdocs']:.1f}x; the same number of "
          f"breaking changes: {'yes' if same else 'no'}")


def corpus(runner: list[str], folder: Path) -> None:
    """Each rule on each real spec: found, and judged as the rule says, by each tool."""
    specs = {name: parsed(raw) for name, raw in sources().items()}
    pairs = [(m, versions(spec, [m])) for m in MUTATIONS for spec in specs.values()]
    mine = [diff(base, head) for _, (base, head) in pairs]
    batch = folder / "pairs.json"
    batch.write_text(json.dumps([pair for _, pair in pairs]))
    theirs = measure([*runner, "corpus", str(batch)])[0]
    n = len(specs)
    print(f"\nmutation corpus: {len(MUTATIONS)} rules x {n} specs; found / breaking verdict "
          "as the rule says\n")
    print("| rule | breaking | llmdocs found | llmdocs verdict | api-smart-diff found "
          "| api-smart-diff verdict |")
    print("|---|---|---|---|---|---|")
    totals = [0, 0, 0, 0]
    for i, mutation in enumerate(MUTATIONS):
        rows = range(i * n, (i + 1) * n)
        figures = [sum(bool(mine[j].changes) for j in rows),
                   sum(bool(mine[j].changes) and (mine[j].summary.breaking > 0)
                       == mutation.breaking for j in rows),
                   sum(theirs[j]["found"] for j in rows),
                   sum(theirs[j]["found"] and theirs[j]["breaking"] == mutation.breaking
                       for j in rows)]
        totals = [a + b for a, b in zip(totals, figures, strict=True)]
        print(f"| {mutation.name} | {'yes' if mutation.breaking else 'no'} | "
              + " | ".join(f"{f}/{n}" for f in figures) + " |")
    print("| **all** | | " + " | ".join(f"{t}/{n * len(MUTATIONS)}" for t in totals) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=350, help="6 operations each")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ours", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ours:
        ours(*args.ours)
        return
    module = npm.ensure(ASD, "api-smart-diff", "quality")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "runner.js").write_text(NODE_RUNNER)
        runner = ["node", str(folder / "runner.js"), str(module)]
        large(args.resources, args.rounds, runner, folder)
        corpus(runner, folder)


if __name__ == "__main__":
    main()
