"""`llmdocs docs ...`: the doc-store from the terminal."""

from __future__ import annotations

from llmdocs.cli_support import service_cli
from llmdocs.services.docstore import spec
from llmdocs.services.docstore.client import DocStoreClient

cli = service_cli(spec, DocStoreClient, name="docs")
