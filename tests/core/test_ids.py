"""Document, run and event ids: valid UUIDv7, unique, time-ordered, also across a fork."""

from __future__ import annotations

import os
import time
import uuid

from llmdocs.core.ids import new_id


def test_ids_are_uuid7_unique_and_sort_by_creation() -> None:
    ids = []
    for _ in range(3):
        ids += [new_id() for _ in range(1000)]  # several pools' worth
        time.sleep(0.002)
    parsed = [uuid.UUID(i) for i in ids]
    assert all(str(u) == i and u.version == 7 and u.variant == uuid.RFC_4122
               for u, i in zip(parsed, ids, strict=True))
    assert len(set(ids)) == len(ids)
    # the millisecond prefix never goes backwards, so ids sort by creation time
    stamps = [u.int >> 80 for u in parsed]
    assert stamps == sorted(stamps) and stamps[-1] > stamps[0]


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    new_id()  # the parent holds a partly used pool of random bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its next ids and leave at once
        os.write(write, ",".join(new_id() for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = pipe.read().split(",")
    parent = [new_id() for _ in range(5)]
    # same millisecond is possible; the random tails must differ
    assert {c[15:] for c in child}.isdisjoint(p[15:] for p in parent)
