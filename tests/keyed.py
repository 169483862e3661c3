"""A creating POST sent twice with one Idempotency-Key: the check every service's
creating routes share (core.idempotency)."""

from __future__ import annotations

from typing import Any

import httpx


async def created_once(http: httpx.AsyncClient, path: str, body: Any, other: Any,
                       state: str) -> Any:
    """POST `body` to `path` twice with one key: the same status and answer, and the
    GET of `state` (what the POST adds to) unchanged by the second; `other` with that
    key is a 422. The first answer."""
    key = {"Idempotency-Key": f"once:{path}"}
    first = await http.post(path, json=body, headers=key)
    assert first.status_code in (200, 201), first.text
    before = (await http.get(state)).json()
    again = await http.post(path, json=body, headers=key)
    assert (again.status_code, again.json()) == (first.status_code, first.json()), path
    assert (await http.get(state)).json() == before, path
    reused = await http.post(path, json=other, headers=key)
    assert reused.status_code == 422, reused.text
    assert "Idempotency-Key" in reused.json()["detail"]
    return first.json()
