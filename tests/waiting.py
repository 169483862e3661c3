"""Waiting in tests for what another task, connection or process delivers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def eventually(check: Callable[[], Awaitable[bool]], attempts: int = 500) -> None:
    """Wait until `check` holds (10 ms between tries): a hang guard, not a time bound."""
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")
