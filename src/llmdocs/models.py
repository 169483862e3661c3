"""Every table of the ecosystem on one metadata, for Alembic; it imports each service's
`models.py` that exists, so adding a service's tables needs no edit here."""

from __future__ import annotations

import importlib
import importlib.util

from llmdocs.core.config import SERVICE_NAMES
from llmdocs.core.db import Base

MODEL_MODULES = ["llmdocs.core.events.models"] + [
    f"llmdocs.services.{key}.models" for key in SERVICE_NAMES
]

for _name in MODEL_MODULES:
    if importlib.util.find_spec(_name) is not None:
        importlib.import_module(_name)

metadata = Base.metadata
