"""`python -m llmdocs.compliance [LOCK]`, CI's dependency scan: pip-audit on the lock,
the result printed; exit 1 only on a known vulnerability (an unreachable vulnerability
service is said and passes, as the report's control warns)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from llmdocs.compliance.dependencies import dependency_control

lock = Path(sys.argv[1] if len(sys.argv) > 1 else "requirements.lock")
control = asyncio.run(dependency_control(lock))
print(f"pip-audit {lock}: {control.status}: {control.evidence}")
sys.exit(1 if control.status == "fail" else 0)
