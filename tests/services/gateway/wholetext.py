"""The detector as it scanned before it went line by line: every pattern over the whole
text, the value plugins per `splitlines` line (remembered by line). The tests compare
the detector's findings with it; bench/detector.py times it as the baseline. The value
plugins' values are those the detector keeps (`kept_values`), so the two differ only
in where the patterns run. Neither reads invisible characters (`readable`)."""

from __future__ import annotations

from typing import Any

from llmdocs.services.gateway.rules import kept_values
from llmdocs.services.gateway.security import Detector, Finding, _dedupe, _Found


class WholeText:
    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        regexes = detector._per_line + [regex for regex, _ in detector._joins + detector._whole]
        self.regexes = sorted(regexes, key=lambda regex: regex[0])
        self.values = detector._values
        self.lines: dict[str, list[_Found]] = {}

    def findings(self, texts: list[str]) -> tuple[Finding, ...]:
        return tuple(Finding(kind, index, start, end) for index, text in enumerate(texts)
                     for kind, start, end in _dedupe(self._found(text)))

    def _found(self, text: str) -> list[_Found]:
        found: list[_Found] = []
        for priority, kind, rx, check, group in self.regexes:
            found += [(priority, kind, m.start(group), m.end(group)) for m in rx.finditer(text)
                      if check is None or check(m.group(group))]
        offset = 0
        for line in text.splitlines(keepends=True):
            found += [(p, kind, offset + s, offset + e) for p, kind, s, e in self._values(line)]
            offset += len(line)
        return found

    def _values(self, line: str) -> list[_Found]:
        found = self.lines.get(line)
        if found is None:
            plugins: list[tuple[str, Any]] = self.detector._value_plugins
            found = self.lines[line] = [
                (self.values, kind, at, at + len(value)) for kind, plugin in plugins
                for at, value in kept_values(plugin, line)]
        return found
