"""Sortable ids: UUIDv7 (RFC 9562), time-ordered so that ids sort by creation."""

from __future__ import annotations

import os
import threading
import time

# Random bits come from the OS a page at a time: one system call per ~400 ids instead of
# one per id (a bulk import makes thousands a second, and system calls are not free).
_POOL_BYTES = 4096
_lock = threading.Lock()
_pool = b""
_used = 0


def _forget_pool() -> None:
    """A forked child must not hand out its parent's remaining random bytes again."""
    global _pool, _used
    _pool, _used = b"", 0


os.register_at_fork(after_in_child=_forget_pool)


def random_bytes(count: int) -> bytes:
    """`count` (at most a pool's) bytes from the OS generator, without a system call each."""
    global _pool, _used
    with _lock:
        if _used + count > len(_pool):
            _pool, _used = os.urandom(_POOL_BYTES), 0
        chunk = _pool[_used:_used + count]
        _used += count
    return chunk


def new_id() -> str:
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(random_bytes(10), "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76  # version 7
    value |= (rand >> 68) << 64  # 12 random bits
    value |= 0b10 << 62  # RFC 4122 variant
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
