"""The fuzzer's tally: operations and cases per service, at the end of the run."""

from __future__ import annotations

import pytest

from fuzz import CASES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    for service, cases in sorted(config.stash.get(CASES, {}).items()):
        terminalreporter.write_line(f"schemathesis {service}: {len(cases)} operations, "
                                    f"{sum(cases.values())} cases")
