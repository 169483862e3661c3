"""Bar charts as geometry for server-rendered SVG: no script, readable at 360 px, and
the same rows serve as the chart's text alternative (a table)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

WIDTH = 320  # viewBox units; the SVG scales to its container
ROW = 34  # a label line and its bar
BAR = 14
LABEL_GAP = 4


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    shown: str  # the value as the reader sees it ("$0.0123", "42 calls")
    y: float  # top of the row (the label's line; the bar is below it)
    width: float  # the bar's length in viewBox units

    @property
    def bar_y(self) -> float:
        return self.y + ROW - BAR - LABEL_GAP

    @property
    def text_y(self) -> float:
        return self.y + 12


@dataclass(frozen=True)
class BarChart:
    """A horizontal bar chart: one row per label, bars scaled to the largest value."""

    title: str
    bars: tuple[Bar, ...]
    width: int = WIDTH

    @property
    def height(self) -> int:
        return max(ROW, ROW * len(self.bars))

    @property
    def summary(self) -> str:
        """One sentence for screen readers: what the chart shows and its largest row."""
        if not self.bars:
            return f"{self.title}: no data."
        top = max(self.bars, key=lambda b: b.value)
        return f"{self.title}: {len(self.bars)} rows; largest {top.label} at {top.shown}."


def bar_chart(title: str, rows: Iterable[tuple[str, float]],
              shown: Callable[[float], str]) -> BarChart:
    """The chart of `(label, value)` rows in their order; `shown` formats a value."""
    items = list(rows)
    largest = max((value for _, value in items), default=0.0)
    bars = tuple(
        Bar(label=label, value=value, shown=shown(value), y=i * ROW,
            width=(value / largest * WIDTH) if largest > 0 else 0.0)
        for i, (label, value) in enumerate(items))
    return BarChart(title=title, bars=bars)


def dollars(value: float) -> str:
    """Spend as the page shows it: cents for ordinary sums, more digits for small ones."""
    return f"${value:,.2f}" if value >= 1 or value == 0 else f"${value:.4f}"
