"""Pagination cursors as opaque URL-safe text. A cursor comes back from anyone, so what
it holds that this store did not write is a 422 naming `cursor`, never a database error."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from llmdocs.core.db import INT4_MAX, as_utc, storable
from llmdocs.services.docstore.errors import Rejected

# a list cursor holds a title (500 characters, each up to 12 as JSON) and an id, in base64
MAX_CURSOR = 16_384


def bad_cursor() -> Rejected:
    return Rejected("The pagination cursor is not valid: pass back a next_cursor "
                    "unchanged, or start again without it.",
                    field="cursor", message="not a cursor this store gave")


def encode_cursor(payload: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[Any]:
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        payload = None
    if not isinstance(payload, list) or len(payload) != size:
        raise bad_cursor()
    return payload


def list_position(cursor: str, by_title: bool) -> tuple[str | datetime, str]:
    """The sort value and id of the last document listed: a title, or a naive UTC time
    as the columns hold it on both databases."""
    value, last_id = decode_cursor(cursor, 2)
    try:
        after = storable(str(value)) if by_title else as_utc(
            datetime.fromisoformat(str(value))).replace(tzinfo=None)
        return after, storable(str(last_id))
    except ValueError:  # also a number past the digits str() writes
        raise bad_cursor() from None


def search_offset(cursor: str) -> int:
    [offset] = decode_cursor(cursor, 1)
    if type(offset) is not int or not 0 <= offset <= INT4_MAX:
        raise bad_cursor()
    return offset
