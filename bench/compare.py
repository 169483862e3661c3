"""A bench script's figures at two git revisions, side by side, with the ratio new/old.

    .venv/bin/python bench/compare.py BASE SCRIPT [--new REV] [--rounds 3] [-- ARGS...]

BASE (and REV, when given) is checked out in a temporary `git worktree`, removed at the
end; without --new the new side is this checkout as it stands, uncommitted changes
included. Each revision runs its own `bench/SCRIPT` with the same ARGS, the same Python
and `PYTHONPATH=<checkout>/src:<checkout>/tests`, taking turns (old, new, new, old ...)
so that a busy machine slows both alike. Every number a run prints is a figure, named by
its table row and column or, outside a table, by its line; the table shows each figure's
median per revision, the ratio new/old, and the spread ((max - min) / median, the larger
of the two revisions'): a ratio within the spread of 1 is the same figure within noise.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# A number standing alone: not inside a word ("p50", "x500", "v1", "@32"), commas between
# thousands, an optional "x" or "%" after it. No nested quantifiers: linear per line.
NUMBER = re.compile(r"(?<![\w.@])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?[x%]?(?![\w.])")
CELL = re.compile(r"\S+(?: \S+)*")
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d")

Figures = dict[str, float]


@dataclass(frozen=True)
class Cell:
    """Text of a table line between runs of two spaces, and where it stands."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Row:
    """One figure's medians at both revisions (None where a revision did not print it)."""

    name: str
    old: float | None
    new: float | None
    spread: float | None

    @property
    def ratio(self) -> float | None:
        if self.old is None or self.new is None or self.old == 0:
            return None
        return self.new / self.old


def numbers(text: str) -> list[float]:
    """The numbers standing alone in `text`, in order."""
    return [float(found.replace(",", "").rstrip("x%")) for found in NUMBER.findall(text)]


def line_name(line: str, index: int) -> str:
    """A figure outside a table: its line, the figure as "@" and the others as "#"."""
    marks = iter(range(len(NUMBER.findall(line))))
    marked = NUMBER.sub(lambda _: "@" if next(marks) == index else "#", line)
    return " ".join(marked.split())


def cells(line: str) -> list[Cell]:
    """A line's cells (text apart by two spaces or more) with their column spans."""
    return [Cell(m.group(), m.start(), m.end()) for m in CELL.finditer(line)]


def gap(one: Cell, other: Cell) -> int:
    """Columns between two cells, 0 where they overlap."""
    return max(one.start - other.end, other.start - one.end, 0)


def row_figures(row: Sequence[Cell], header: Sequence[Cell]) -> Iterator[tuple[str, float]]:
    """A table row's numbers: "row · column", and the cell itself where it is not a number.
    A number's column is the header cell over it, else the nearest, never the row labels'."""
    columns = [top for top in header if gap(top, row[0])] or header
    for cell in row[1:]:
        at = NUMBER.match(cell.text)
        for place, value in enumerate(numbers(cell.text)):
            where = (min(columns, key=lambda top: gap(top, cell)).text if at
                     else line_name(cell.text, place))
            yield f"{row[0].text} · {where}" + (f" ({place + 1})" if at and place else ""), value


def figures(output: str) -> Figures:
    """Every number of a bench's output by name: "row · column" under a table's header
    (two cells or more, none but the first holding a number), else its line's text."""
    found: Figures = {}
    seen: Counter[str] = Counter()
    header: list[Cell] | None = None
    for line in output.splitlines():
        if LOG_LINE.match(line) or (line.strip() and not any(c.isalnum() for c in line)):
            continue  # a log record, or a ruler under a table's header
        row = cells(line)
        if len(row) >= 2 and not any(NUMBER.search(cell.text) for cell in row[1:]):
            header = row
            continue
        if header and any(NUMBER.match(cell.text) for cell in row[1:]):
            named = list(row_figures(row, header))
        else:
            header = None
            named = [(line_name(line, i), value) for i, value in enumerate(numbers(line))]
        for name, value in named:
            seen[name] += 1  # a name printed again (a second table alike) gets its count
            found[name if seen[name] == 1 else f"{name} ({seen[name]}. time)"] = value
    return found


def spread(samples: Sequence[float]) -> float | None:
    """(max - min) / median of one revision's runs, None for a zero median."""
    middle = statistics.median(samples)
    return (max(samples) - min(samples)) / abs(middle) if middle else None


def compared(old_runs: Sequence[Figures], new_runs: Sequence[Figures]) -> list[Row]:
    """Each figure's median per revision, in the order the new (else old) output shows."""
    names = list(dict.fromkeys(
        [name for run in new_runs for name in run] + [name for run in old_runs for name in run]))
    rows = []
    for name in names:
        sides = [[run[name] for run in runs if name in run] for runs in (old_runs, new_runs)]
        spreads = [s for s in (spread(side) for side in sides if side) if s is not None]
        old, new = (statistics.median(side) if side else None for side in sides)
        rows.append(Row(name, old, new, max(spreads) if spreads else None))
    return rows


def shown(value: float | None, suffix: str = "") -> str:
    """Two decimals, none past 1,000, three digits below 1 (0.083 ms is not 0.08)."""
    if value is None:
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}{suffix}"
    return f"{value:.2f}{suffix}" if abs(value) >= 1 or value == 0 else f"{value:.3g}{suffix}"


def escaped(name: str) -> str:
    """A name for a Markdown cell, where a bar would end the cell."""
    return name.replace("|", "\\|")


def table(rows: Sequence[Row], old_label: str, new_label: str) -> str:
    """A Markdown table: it reads as text and pastes into an issue or a commit body."""
    lines = [f"| figure | {old_label} | {new_label} | new/old | spread |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {escaped(row.name)} | {shown(row.old)} | {shown(row.new)} "
              f"| {shown(row.ratio)} "
              f"| {shown(None if row.spread is None else row.spread * 100, '%')} |"
              for row in rows]
    ratios = [row.ratio for row in rows if row.ratio]
    beyond = [row for row in rows if row.ratio and row.spread is not None
              and abs(row.ratio - 1) > row.spread]
    if ratios:
        lines.append(f"\ngeometric mean of the ratios {statistics.geometric_mean(ratios):.3f} "
                     f"over {len(ratios)} figures; {len(beyond)} differ by more than their "
                     "spread")
    return "\n".join(lines)


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@contextmanager
def checkout(rev: str, path: Path) -> Iterator[Path]:
    """`rev` in a temporary worktree of this repository, removed on the way out."""
    git("worktree", "add", "--detach", str(path), rev)
    try:
        yield path
    finally:
        git("worktree", "remove", "--force", str(path))


def run(tree: Path, script: str, args: Sequence[str]) -> Figures:
    """One run of the tree's own bench script; its failure stops the comparison."""
    env = dict(os.environ, PYTHONPATH=f"{tree / 'src'}{os.pathsep}{tree / 'tests'}")
    done = subprocess.run([sys.executable, str(tree / "bench" / script), *args], cwd=tree,
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"{script} failed in {tree} ({done.returncode}):\n{done.stderr[-3000:]}")
    sys.stderr.write(done.stdout)
    return figures(done.stdout)


def alternate(old_tree: Path, new_tree: Path, script: str, args: Sequence[str], rounds: int
              ) -> tuple[list[Figures], list[Figures]]:
    """Old and new runs taking turns, which goes first swapping every round (the run
    after a round's first is faster on a busy machine); no old runs where the base has
    no such script."""
    old_runs: list[Figures] = []
    new_runs: list[Figures] = []
    sides = [(new_tree, new_runs)]
    if (old_tree / "bench" / script).exists():
        sides.insert(0, (old_tree, old_runs))
    for round_ in range(rounds):
        sys.stderr.write(f"-- round {round_ + 1} of {rounds}\n")
        for tree, runs in sides[::-1] if round_ % 2 else sides:
            runs.append(run(tree, script, args))
    return old_runs, new_runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     epilog="the script's own options follow a --")
    parser.add_argument("base", help="the old revision")
    parser.add_argument("script", help="a script of bench/, e.g. detector.py")
    parser.add_argument("--new", help="the new revision (default: this checkout as it is)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs per revision (an even number balances who goes first)")
    argv = sys.argv[1:]
    ours = argv.index("--") if "--" in argv else len(argv)
    options, args = parser.parse_args(argv[:ours]), argv[ours + 1:]
    script = Path(options.script).with_suffix(".py").name
    with tempfile.TemporaryDirectory(prefix="llmdocs-compare-") as temp:
        new_side: AbstractContextManager[Path] = (
            checkout(options.new, Path(temp, "new")) if options.new else nullcontext(REPO))
        with checkout(options.base, Path(temp, "old")) as old_tree, new_side as new_tree:
            old_runs, new_runs = alternate(old_tree, new_tree, script, args, options.rounds)
    print(f"{script} {' '.join(args)}: median of {options.rounds} runs per revision")
    if not old_runs:
        print(f"bench/{script} does not exist at {options.base}: new figures only")
    print(table(compared(old_runs, new_runs), options.base, options.new or "this checkout"))


if __name__ == "__main__":
    main()
