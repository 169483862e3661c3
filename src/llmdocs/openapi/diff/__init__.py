"""What changed between two versions of an API spec, and which changes break clients."""

from llmdocs.openapi.diff.changes import RULES, Change, Diff, Summary
from llmdocs.openapi.diff.compare import diff

__all__ = ["RULES", "Change", "Diff", "Summary", "diff"]
