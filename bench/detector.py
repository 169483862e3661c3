"""The gateway's security detector: time per call on prompts like the workflow's, and
time against input length.

    .venv/bin/python bench/detector.py [--docs 200] [--rounds 5]
    .venv/bin/python bench/detector.py --growth [--max-kib 1024]

Prompts are the section-writing seed rendered with an OpenAPI spec's first 1,200
characters as the sources (what the orchestrator shows the model), the outline, and a
query and section that change with every document and call: most lines come back prompt
after prompt, a few are new ("repeated"); and the same prompts with every line made new
("cold", the worst case for a memo by line). Each round scans the prompts with a fresh
detector (line by line, remembered by line) and with the baseline measured in the same
run, the whole-text scan the detector used before (tests/services/gateway/wholetext.py); prints the
median microseconds per call of each and their ratio, and checks that both find the same.

--growth scans texts of 1 KiB, 2 KiB ... 1 MiB, each with a new detector (nothing
remembered): ordinary text (the user service spec's lines, each made new) and hostile
text (the inputs of tests/services/gateway/test_gateway_linear.py: digits, "a.", "api_key",
"eyJ", "token" and spaces, findings); prints milliseconds per scan and the ratio to the
length before, about 2 for linear growth (4 would be quadratic).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from llmdocs.examples import user_service_spec  # noqa: E402
from llmdocs.services.gateway.security import Detector, Finding  # noqa: E402

SEED = HERE.parent / "src/llmdocs/services/promptstore/seeds/section-writing.md"
SECTIONS = ("Overview", "Authentication", "Users", "Sessions", "Errors")


def prompts(docs: int) -> list[str]:
    body = SEED.read_text().split("---\n", 2)[2]
    outline = "\n".join(f"- {title}" for title in SECTIONS)
    out = []
    for doc in range(docs):
        for section in SECTIONS[1:]:
            values = {"query": f"Create API documentation for user service, copy {doc}",
                      "outline": outline, "section": f"{section}: what the {section} do",
                      "sources": "User Service:\n" + user_service_spec()[:1200]}
            text = body
            for name, value in values.items():
                text = text.replace("{{ " + name + " }}", value)
            out.append(text)
    return out


def line_by_line(detector: Detector) -> Callable[[list[str]], tuple[Finding, ...]]:
    return lambda texts: detector.scan(texts).findings


def timed(scan: Callable[[list[str]], tuple[Finding, ...]], texts: list[str]) -> tuple[
        float, list[tuple[Finding, ...]]]:
    started = time.perf_counter()
    found = [scan([text]) for text in texts]
    return (time.perf_counter() - started) / len(texts) * 1e6, found


def ordinary(size: int) -> str:
    spec = user_service_spec()
    lines = (spec * (size // len(spec) + 1)).split("\n")
    return "\n".join(f"{line} {i}" for i, line in enumerate(lines))[:size]


def growth(max_kib: int) -> None:
    from services.gateway.test_gateway_linear import HOSTILE

    kinds: dict[str, Callable[[int], str]] = {"ordinary": ordinary}
    kinds.update((kind, HOSTILE[kind]) for kind in ("digits", "dotted", "keyword", "jwt",
                                                       "spaces", "findings"))
    print("ms per scan (ratio to the length before)")
    print(f"{'length':>8} " + " ".join(f"{kind:>15}" for kind in kinds))
    before: dict[str, float] = {}
    kib = 1
    while kib <= max_kib:
        row = []
        for kind, make in kinds.items():
            text = make(kib * 1024)
            best = float("inf")
            for _ in range(3 if kib <= 64 else 1):
                detector = Detector(max_chars=len(text))
                started = time.perf_counter()
                detector.scan([text])
                best = min(best, time.perf_counter() - started)
            ratio = f"({best / before[kind]:.1f})" if kind in before else ""
            row.append(f"{best * 1000:9.1f} {ratio:>5}")
            before[kind] = best
        print(f"{kib:>5} KiB " + " ".join(f"{cell:>15}" for cell in row))
        kib *= 2


def main() -> None:
    from services.gateway.wholetext import (
        WholeText,  # only here: bench/gateway_call.py imports prompts
    )

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--growth", action="store_true", help="time against input length")
    parser.add_argument("--max-kib", type=int, default=1024)
    args = parser.parse_args()
    if args.growth:
        growth(args.max_kib)
        return
    repeated = prompts(args.docs)
    cold = ["\n".join(f"{line} {i}" for line in text.split("\n"))
            for i, text in enumerate(repeated)]
    print(f"{len(repeated)} prompts of {statistics.median(map(len, repeated)):.0f} "
          f"characters (median), {args.rounds} rounds; us per call (median)")
    print(f"{'prompts':10} {'whole text (baseline)':>22} {'line by line':>13} {'ratio':>6}")
    for name, texts in (("repeated", repeated), ("cold", cold)):
        before, after = [], []
        for _ in range(args.rounds):
            baseline, expected = timed(WholeText(Detector()).findings, texts)
            lines, found = timed(line_by_line(Detector()), texts)
            assert found == expected, "the line-by-line scan found something else"
            before.append(baseline)
            after.append(lines)
        b, a = statistics.median(before), statistics.median(after)
        print(f"{name:10} {b:22.1f} {a:13.1f} {a / b:6.2f}")


if __name__ == "__main__":
    main()
