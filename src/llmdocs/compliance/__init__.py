"""The compliance report: the running deployment checked control by control, each pass,
fail or warn with its evidence (`llmdocs compliance report`, README "Compliance")."""

from __future__ import annotations

from llmdocs.compliance.report import Control, Report, markdown, pdf
from llmdocs.compliance.run import build_report

__all__ = ["Control", "Report", "build_report", "markdown", "pdf"]
