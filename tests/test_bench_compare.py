"""bench/compare.py: how it names a bench's figures and compares two revisions' runs,
on outputs shaped like the benches' own (no bench runs here)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


def load_compare() -> ModuleType:
    """bench/ is scripts, not a package: load compare.py from its file."""
    path = Path(__file__).resolve().parents[1] / "bench" / "compare.py"
    spec = importlib.util.spec_from_file_location("bench_compare", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


compare = load_compare()

TABLES = """\
2026-12-07 00:20:58 [info     ] subscription started           consumer=vm-1 group=bench
200 prompts of 2112 characters (median), 3 rounds; us per call (median)
prompts     whole text (baseline)  line by line  ratio
repeated                   5676.7         125.3   0.02
cold                       4,973.7        5761.9  1.16x

                                     publish     consume  end-to-end
raw redis-py                          41,154      31,618      17,881
summary, 5,000 docs               raw FTS5      API sqlite   /raw FTS5
----------------------------------------------------------------------
GET /health p50 ms                                    3.32
search mid p50 ms                     0.69            4.08       1.11x
search rare p50 ms                    0.11            3.20       <HTTP
ours / raw: publish 41%  consume 79%
ours / raw: publish 40%  consume 80%
"""


def test_numbers_stand_alone_with_thousands_and_units() -> None:
    assert compare.numbers("p50 x500 v1 @32 1,234.5 ms 1.16x 41% -3 (2.0)") == [
        1234.5, 1.16, 41.0, -3.0, 2.0]


def test_table_figures_are_named_by_row_and_column() -> None:
    found = compare.figures(TABLES)
    assert found["repeated · whole text (baseline)"] == 5676.7
    assert found["cold · whole text (baseline)"] == 4973.7
    assert found["cold · ratio"] == 1.16
    # a header with no label column, and one whose label cell holds a number
    assert found["raw redis-py · end-to-end"] == 17881
    assert not any(name.startswith("summary") for name in found)
    assert found["GET /health p50 ms · API sqlite"] == 3.32
    assert found["search mid p50 ms · /raw FTS5"] == 1.11
    assert found["search rare p50 ms · API sqlite"] == 3.20
    assert not any(name.startswith("search rare p50 ms · /raw") for name in found)


def test_lines_outside_tables_mark_their_figure_and_repeat_with_a_count() -> None:
    found = compare.figures(TABLES)
    assert found["@ prompts of # characters (median), # rounds; us per call (median)"] == 200
    assert found["ours / raw: publish # consume @"] == 79
    assert found["ours / raw: publish # consume @ (2. time)"] == 80
    assert not any("subscription" in name for name in found)  # log records are no figures


def test_medians_ratios_and_spread_per_figure() -> None:
    old = [{"a": 10.0, "gone": 1.0}, {"a": 12.0, "gone": 1.0}, {"a": 11.0, "gone": 1.0}]
    new = [{"a": 22.0, "added": 5.0}, {"a": 20.0, "added": 5.0}, {"a": 24.0, "added": 5.0}]
    rows = {row.name: row for row in compare.compared(old, new)}
    assert (rows["a"].old, rows["a"].new, rows["a"].ratio) == (11.0, 22.0, 2.0)
    assert rows["a"].spread == pytest.approx(4 / 22)  # the larger: (24 - 20) / 22
    assert rows["gone"].new is None and rows["gone"].ratio is None
    assert rows["added"].old is None and rows["added"].ratio is None
    assert list(rows) == ["a", "added", "gone"]  # the new output's order first


def test_table_shows_missing_sides_and_counts_figures_beyond_their_spread() -> None:
    rows = compare.compared([{"a|b": 10.0}, {"a|b": 10.0}, {"c": 0.0}],
                            [{"a|b": 20.0}, {"a|b": 20.0}, {"d": 1.0}])
    text = compare.table(rows, "old", "new")
    assert "| a\\|b | 10.00 | 20.00 | 2.00 | 0.00% |" in text
    assert "| c | 0.00 | — | — | — |" in text
    assert "| d | — | 1.00 | — | 0.00% |" in text
    assert text.endswith("over 1 figures; 1 differ by more than their spread")


def test_small_figures_keep_three_digits_and_large_ones_their_thousands() -> None:
    assert [compare.shown(v) for v in (0.083, 0.0, 5.678, 41154.4)] == [
        "0.083", "0.00", "5.68", "41,154"]
