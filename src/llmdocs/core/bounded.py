"""Free-form JSON a request may bring, bounded when it arrives, so whatever is stored
can be read back by PostgreSQL and every reader, and walking it cannot exhaust memory or
the recursion limit; a refusal names where in the value it is (a 422 naming the field)."""

from __future__ import annotations

import math
from typing import Any

from pydantic import AfterValidator

from llmdocs.core.db import utf8_size

# storable means: no NUL and no lone surrogate in any string or key (`storable`), no
# number JSON cannot write (1e400 reads as infinity), no integer orjson refuses (> 64 bits)
MAX_JSON_DEPTH = 16
MAX_JSON_BYTES = 64 * 1024
MAX_JSON_ITEMS = 200  # in one list or object
MAX_JSON_TEXT = 4000  # characters of one string or key
INT64 = 2**63


def bounded_json(max_depth: int = MAX_JSON_DEPTH, max_bytes: int = MAX_JSON_BYTES,
                 max_items: int = MAX_JSON_ITEMS, max_text: int = MAX_JSON_TEXT
                 ) -> AfterValidator:
    """A validator of a JSON value within these bounds, naming where it is not."""

    def check(value: Any) -> Any:
        check_json(value, max_depth, max_bytes, max_items, max_text)
        return value

    return AfterValidator(check)


def check_json(value: Any, max_depth: int = MAX_JSON_DEPTH, max_bytes: int = MAX_JSON_BYTES,
               max_items: int = MAX_JSON_ITEMS, max_text: int = MAX_JSON_TEXT) -> None:
    """Walks iteratively (a deep value cannot overflow the stack) and stops at the first
    bound passed, so the walk costs at most about `max_bytes`."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    size = 0
    while stack:
        item, path = stack.pop()
        if len(path) > max_depth:
            raise _refused(path, f"nests deeper than {max_depth} levels")
        if isinstance(item, str):  # the commonest, first
            size += _text_size(item, path, max_text)
        elif isinstance(item, (dict, list)):
            if len(item) > max_items:
                raise _refused(path, f"has more than {max_items} items")
            if isinstance(item, dict):
                for key, child in item.items():
                    if isinstance(key, str):
                        size += _text_size(key, (*path, key), max_text) + 1
                    stack.append((child, (*path, key)))
            else:
                stack += [(child, (*path, index)) for index, child in enumerate(item)]
            size += len(item) + 2
        elif isinstance(item, float) and not math.isfinite(item):
            raise _refused(path, "is not a finite number")
        elif isinstance(item, int) and not isinstance(item, bool) \
                and not -INT64 <= item < INT64:
            raise _refused(path, "is an integer outside the 64-bit range")
        else:
            size += len(str(item))
        if size > max_bytes:
            raise _refused(path, f"makes the value larger than {_kb(max_bytes)} as JSON")


def _kb(size: int) -> str:
    return f"{size // (1024 * 1024)} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"


def _text_size(text: str, path: tuple[str | int, ...], max_text: int) -> int:
    """The bytes a string takes in JSON, once it is known to be storable text."""
    if len(text) > max_text:
        raise _refused(path, f"is longer than {max_text} characters")
    try:
        return utf8_size(text) + 2
    except ValueError as exc:
        raise _refused(path, str(exc)) from None


def _refused(path: tuple[str | int, ...], why: str) -> ValueError:
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    # the path as printable text: a key may be the very string refused
    shown = where.lstrip(".")[:200].encode("ascii", "backslashreplace").decode()
    return ValueError(f"{shown or 'the value'} {why}")


# one JSON value from a request (any type), within the bounds above
BoundedJson = bounded_json()

# JSON a service stores as given (a document's metadata and provenance, an operation's
# schemas, a prompt's config): bounded only where it would break storage or a reader,
# the sizes left to the body limit of each service
STORED_JSON_DEPTH = 64
STORED_JSON_BYTES = 16 * 1024 * 1024


def check_stored_json(value: Any) -> Any:
    """`value`, when it is JSON a service can store as given (else a ValueError)."""
    check_json(value, STORED_JSON_DEPTH, STORED_JSON_BYTES, max_items=STORED_JSON_BYTES,
               max_text=STORED_JSON_BYTES)
    return value


StorableJson = AfterValidator(check_stored_json)
