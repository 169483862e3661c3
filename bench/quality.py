"""Document quality on real specs: llmdocs with the local model against widdershins.

For each spec of the corpus (the shared corpus, the example, and the real public specs
kept in tests/data/openapi/) the ecosystem runs embedded (gateway with the real local
model, prompt-store, doc-store, orchestrator; SQLite in a temporary directory): the spec
is stored in the doc-store, the document-generation workflow writes the document, and
the stored Markdown and its provenance are read back. Everything is measured through
those two, never through the generator's internals:

- completeness: our own (each operation named, and in its part every parameter, the body
  and every response status); beside it the generator's gate from its provenance
  (completeness/truthfulness, and "ok" when it approved the document);
- truthfulness: supported claims / claims (tests/defects.py, which shares no code with
  the generator's filter): every URL, host, path, number and name the prose mentions,
  and every `METHOD /path` the document names, checked against the spec;
- facts rendered / facts in the spec (bench/facts.py): enum values, defaults, bounds,
  response fields, server URLs;
- model sentences written / kept / dropped by reason (the provenance's `prose`, when
  the generator records it);
- defective sentences in the final document (tests/defects.py);
- whether the prose adds an overview and a getting-started;
- time per document.

The same figures for widdershins 4.0.1 (OpenAPI/Swagger to Markdown, no model), run
offline with node; the median ratio of the times closes the table. widdershins is
installed under ~/.cache/llmdocs/widdershins when missing (`make quality` installs node).

Usage: .venv/bin/python bench/quality.py [--only NAME] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import embedded
import npm
from defects import Defect, Support, check, prose, sentences, truthfulness
from facts import Spec, find_bounded, parts, rendered
from llmdocs.core.auth import issue_token
from llmdocs.examples import user_service_spec
from llmdocs.runtime import run
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.orchestrator.client import OrchestratorClient

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("gateway", "promptstore", "docstore", "orchestrator")
WIDDERSHINS = "widdershins@4.0.1"
RUN_SECONDS = 300.0  # the longest wait the orchestrator grants


def shared_corpus() -> list[Path]:
    """`../shared/corpus/openapi/` beside the checkout (a worktree sits one level deeper)."""
    for base in (ROOT.parent, ROOT.parent.parent):
        folder = base / "shared" / "corpus" / "openapi"
        if folder.is_dir():
            return sorted(folder.glob("*.yaml"))
    return []


def corpus() -> dict[str, str]:
    """Spec name → its text."""
    specs = {"user-service (example)": user_service_spec()}
    for path in [*shared_corpus(), *sorted((ROOT / "tests/data/openapi").glob("*.yaml"))]:
        specs[path.stem] = path.read_text(encoding="utf-8")
    return specs


def ensure_widdershins() -> Path:
    return npm.ensure(WIDDERSHINS, "widdershins/widdershins.js", "quality")


def widdershins(spec: str, workdir: Path) -> tuple[str, float]:
    """widdershins' Markdown for `spec` and its wall time (node's start included, as a
    team running it would pay)."""
    source, out = workdir / "spec.yaml", workdir / "widdershins.md"
    source.write_text(spec, encoding="utf-8")
    started = time.perf_counter()
    subprocess.run(["node", str(ensure_widdershins()), "--omitHeader", "--expandBody",
                    str(source), "-o", str(out)], check=True, capture_output=True, cwd=workdir)
    return out.read_text(encoding="utf-8"), time.perf_counter() - started


@dataclass
class Figures:
    seconds: float | None = None
    facts: tuple[int, int] = (0, 0)
    defects: list[Defect] = field(default_factory=list)
    truth: tuple[int, int] = (0, 0)
    completeness: float | None = None
    gate: str = "-"  # the generator's own verdict, from its provenance
    sentences: str = "n/a"
    adds: str = ""
    error: str = ""


def completeness(markdown: str, spec: Spec) -> float:
    """Each operation's checklist: named, and in its part every parameter, the body
    (when it has one) and every response status."""
    ops = list(spec.operations())
    by_op = parts(markdown, [name for name, _, _ in ops])
    done = total = 0
    for name, op, raw_parameters in ops:
        parameters = [p for p in (spec.deref(r)[0] for r in raw_parameters) if isinstance(p, dict)]
        items = [str(p.get("name", "")) for p in parameters if p.get("in") != "body"]
        items += [str(code) for code in op.get("responses") or {}]
        body = "requestBody" in op or any(p.get("in") == "body" for p in parameters)
        total += 1 + len(items) + body
        part = by_op.get(name)
        if part is not None:
            done += 1 + sum(find_bounded(part, item) >= 0 for item in items if item)
            done += body and "body" in part.lower()
    return done / total if total else 1.0


def adds(markdown: str, doc: dict[str, Any], defective: set[str]) -> str:
    """What the prose adds that a reference lacks: an overview, a getting-started, each
    counted when its section holds a sentence of its own (not the spec's, which any
    reference prints) with no defect."""
    support = Support(doc)
    found = []
    for label, words in (("overview", ("overview", "introduction")),
                         ("getting started", ("getting started", "quick start"))):
        for title, body in sections(markdown):
            if any(w in title for w in words) and any(
                    s not in defective and not support.said(" ".join(s.lower().split()))
                    for p in prose(body) for s in sentences(p.text)):
                found.append(label)
                break
    return "+".join(found) or "-"


def sections(markdown: str) -> list[tuple[str, str]]:
    """Each heading's title (lower case) and the text up to the next heading."""
    found: list[tuple[str, list[str]]] = []
    for line in markdown.splitlines():
        if line.startswith("#"):
            found.append((line.lstrip("#").strip().lower(), []))
        elif found:
            found[-1][1].append(line)
    return [(title, "\n".join(lines)) for title, lines in found]


def prose_counts(provenance: dict[str, Any]) -> str:
    """Model sentences written/kept and the dropped ones by reason, from `prose` in the
    provenance (per section: written, kept, dropped as a list of reasons or a count by
    reason); n/a while the generator does not record them."""
    prose = provenance.get("prose")
    if not isinstance(prose, (dict, list)):
        return "n/a"
    sections = prose.values() if isinstance(prose, dict) else prose
    written = kept = 0
    reasons: Counter[str] = Counter()
    for section in sections:
        if not isinstance(section, dict):
            continue
        written += int(section.get("written", 0))
        kept += int(section.get("kept", 0))
        dropped = section.get("dropped", [])
        if isinstance(dropped, dict):
            reasons.update({str(k): int(v) for k, v in dropped.items()})
        elif isinstance(dropped, list):
            reasons.update(str(d.get("reason", d)) if isinstance(d, dict) else str(d)
                           for d in dropped)
    why = ", ".join(f"{reason} {n}" for reason, n in reasons.most_common())
    return f"{written}/{kept}" + (f" ({why})" if why else "")


def measure(markdown: str, doc: dict[str, Any]) -> Figures:
    spec = Spec(doc)
    facts = spec.facts()
    defects = check(markdown, doc)
    return Figures(facts=(len(rendered(markdown, facts)), len(facts)), defects=defects,
                   truth=truthfulness(markdown, doc), completeness=completeness(markdown, spec),
                   adds=adds(markdown, doc, {d.sentence for d in defects}))


async def llmdocs_documents(specs: dict[str, str], keep: Path | None) -> dict[str, Figures]:
    """Each spec stored, documented by the workflow with the local model, read back."""
    results: dict[str, Figures] = {}
    async with embedded.embedded(SERVICES) as settings:
        token = issue_token(settings, "user:bench", ["*"])
        async with DocStoreClient.for_service(settings, token=token) as store, \
                OrchestratorClient.for_service(settings, token=token) as orchestrator:
            orchestrator.http.timeout = RUN_SECONDS + 60
            store.http.timeout = 120
            for name, text in specs.items():
                title = str(yaml.safe_load(text)["info"]["title"])
                stored = await store.put(text, title=f"{title} OpenAPI", format="yaml",
                                         tags=["openapi"], metadata={"service": name})
                started = time.perf_counter()
                outcome = await orchestrator.start_run("document-generation", {
                    "query": f"Create API documentation for the {title}",
                    "spec_document_id": stored.document_id}, wait=RUN_SECONDS)
                seconds = time.perf_counter() - started
                if outcome.status != "completed" or not outcome.result:
                    pending = "pending Swagger 2.0 conversion; " if "swagger:" in text else ""
                    results[name] = Figures(error=f"{pending}{outcome.status}: {outcome.error}")
                    continue
                document_id = outcome.result["document_id"]
                markdown = (await store.get(document_id)).content or ""
                provenance = (await store.provenance(document_id)).provenance or {}
                if keep is not None:
                    (keep / f"{name}.llmdocs.md").write_text(markdown, encoding="utf-8")
                    (keep / f"{name}.provenance.json").write_text(
                        json.dumps(provenance, indent=1, default=str), encoding="utf-8")
                figures = measure(markdown, yaml.safe_load(text))
                figures.seconds = seconds
                figures.gate = gate_of(provenance.get("quality_metrics") or {})
                figures.sentences = prose_counts(provenance)
                results[name] = figures
    return results


def reason_kind(reason: str) -> str:
    """A defect's reason without its particulars: "unsupported URL", "cut off"."""
    kind = reason.split(":", 1)[0]
    return " ".join(kind.split()[:2]) if kind.startswith("unsupported") else kind


def gate_of(quality: dict[str, Any]) -> str:
    """The generator's verdict: completeness/truthfulness, "ok" when approved."""
    if "completeness" not in quality:
        return "-"
    return (f"{quality['completeness']:.2f}/{quality['truthfulness']:.2f}"
            f"{' ok' if quality.get('approved') else ' no'}")


def show(specs: dict[str, str], ours: dict[str, Figures], theirs: dict[str, Figures]) -> None:
    print(f"{'spec':<24} {'tool':<11} {'ops':>4} {'compl':>6} {'gate':>12} {'truth':>15} "
          f"{'facts':>9} {'defects':>8} {'adds':<25} {'sec':>7}  model sentences written/kept")
    times = []
    for name, text in specs.items():
        ops = len(list(Spec(yaml.safe_load(text)).operations()))
        for tool, fig in (("llmdocs", ours[name]), ("widdershins", theirs[name])):
            if fig.error:
                print(f"{name:<24} {tool:<11} {ops:>4}  {fig.error[:120]}")
                continue
            share = fig.truth[0] / fig.truth[1] if fig.truth[1] else 1.0
            truth = f"{share:.2f} ({fig.truth[0]}/{fig.truth[1]})"
            facts = f"{fig.facts[0]}/{fig.facts[1]}"
            print(f"{name:<24} {tool:<11} {ops:>4} {fig.completeness or 0:>6.2f} {fig.gate:>12} "
                  f"{truth:>15} {facts:>9} {len(fig.defects):>8} {fig.adds:<25} "
                  f"{fig.seconds or 0:>7.2f}  {fig.sentences if tool == 'llmdocs' else ''}")
        mine, other = ours[name].seconds, theirs[name].seconds
        if mine and other:
            times.append(mine / other)
    if times:
        print(f"\nmedian time per document, llmdocs / widdershins: {statistics.median(times):.1f}x")
    print("\ndefective sentences (independent check), by reason:")
    for tool, figures in (("llmdocs", ours), ("widdershins", theirs)):
        reasons = Counter(reason_kind(d.reason) for f in figures.values() for d in f.defects)
        print(f"  {tool:<11} " + (", ".join(f"{r} {n}" for r, n in reasons.most_common())
                                  or "none"))
    for name, fig in ours.items():
        for defect in fig.defects[:6]:
            print(f"  {name}: [{defect.reason}] {defect.sentence[:140]}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", help="the one spec to run (a name from the table)")
    parser.add_argument("--keep", type=Path, help="write the documents to this folder")
    args = parser.parse_args()
    specs = corpus()
    if args.only:
        specs = {args.only: specs[args.only]}
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    theirs: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory(prefix="llmdocs-quality-") as tmp:
        for name, text in specs.items():
            markdown, seconds = widdershins(text, Path(tmp))
            if args.keep:
                (args.keep / f"{name}.widdershins.md").write_text(markdown, encoding="utf-8")
            theirs[name] = measure(markdown, yaml.safe_load(text))
            theirs[name].seconds = seconds
    ours = await llmdocs_documents(specs, args.keep)
    show(specs, ours, theirs)


if __name__ == "__main__":
    run(main())
