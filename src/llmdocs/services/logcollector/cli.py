"""`llmdocs logs ...`: the log-collector from the terminal."""

from __future__ import annotations

from llmdocs.cli_support import service_cli
from llmdocs.services.logcollector import spec
from llmdocs.services.logcollector.client import LogCollectorClient

cli = service_cli(spec, LogCollectorClient, name="logs")
