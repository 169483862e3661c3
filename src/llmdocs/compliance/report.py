"""A report's shape and its renderings: JSON for machines, a Markdown table for people,
PDF through the renderer generated documents use."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from llmdocs.formats import GeneratedDocument, Section, render

Status = Literal["pass", "fail", "warn"]


class Control(BaseModel):
    id: str
    title: str
    status: Status
    evidence: str


class Report(BaseModel):
    controls: list[Control]

    @property
    def failed(self) -> bool:
        return any(control.status == "fail" for control in self.controls)


def _cell(text: str) -> str:
    """A table cell: a pipe or a line break would end the cell or the row early."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(report: Report) -> str:
    rows = [f"| {c.id} | {_cell(c.title)} | {c.status.upper()} | {_cell(c.evidence)} |"
            for c in report.controls]
    return "\n".join(["| Control | Title | Status | Evidence |", "|---|---|---|---|", *rows])


def _summary(report: Report) -> str:
    counts = {status: sum(c.status == status for c in report.controls)
              for status in ("pass", "fail", "warn")}
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def markdown(report: Report) -> str:
    """The report as a Markdown page: a summary line and one table row per control."""
    return f"# llmdocs compliance report\n\n{_summary(report)}\n\n{_table(report)}\n"


def pdf(report: Report) -> bytes:
    """The report as PDF, laid out like every generated document."""
    document = GeneratedDocument(title="llmdocs compliance report", summary=_summary(report),
                                 sections=[Section(title="Controls", body=_table(report))])
    return render(document, "pdf").content
