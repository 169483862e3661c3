"""The event bus contract, run against every backend: SQL on SQLite and on PostgreSQL,
and Redis Streams. Real servers throughout; the spool tests stop them for real."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from llmdocs.core.config import Settings
from llmdocs.core.db import Database
from llmdocs.core.events import Delivery, Event, EventBus, spool
from llmdocs.core.events.base import DEAD_LETTERED, StartAt
from llmdocs.core.events.factory import create_event_bus
from llmdocs.core.events.spool import Outgoing, SpoolingEventBus
from llmdocs.core.events.sql import SqlEventBus
from llmdocs.devservers import RedisServer, free_port
from llmdocs.migrations import upgrade

TYPE = "llmdocs.test.happened"
OTHER_TYPE = "llmdocs.test.ignored"
PATIENCE = 15.0  # a safety net for loops that wait on real behaviour, never a threshold


def events(n: int, type: str = TYPE, first: int = 0) -> list[Event]:
    return [Event(source="llmdocs/test", type=type, data={"n": first + i, "pad": "x" * 100})
            for i in range(n)]


def ids(items: list[Event] | list[Delivery]) -> list[str]:
    return [item.id if isinstance(item, Event) else item.event.id for item in items]


def quick(settings: Settings, **overrides: object) -> Settings:
    """Timeouts short enough that redelivery and spool flushing happen within a test."""
    values = {"event_redelivery_seconds": 0.2, "event_max_deliveries": 3,
              "spool_flush_seconds": 0.05, **overrides}
    return settings.model_copy(update=values)


@dataclass
class Backend:
    """Opens buses on one backend; several buses stand for several processes."""

    name: str
    url: str
    settings: Settings
    buses: list[EventBus] = field(default_factory=list)
    databases: list[Database] = field(default_factory=list)

    async def bus(self, settings: Settings | None = None) -> EventBus:
        settings = settings or self.settings
        if self.name == "redis":
            database = Database(settings.database_url)  # unused by a Redis bus
            settings = settings.model_copy(update={"events_url": self.url})
        else:
            database = Database(self.url)
            await database.migrate(upgrade)
        self.databases.append(database)
        bus = create_event_bus(settings, database)
        await bus.start()
        self.buses.append(bus)
        return bus

    async def close(self) -> None:
        for bus in self.buses:
            await bus.close()
        for database in self.databases:
            await database.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def backend_url(request: pytest.FixtureRequest) -> tuple[str, str]:
    name = request.param
    fixture = {"sqlite": "sqlite_url", "postgresql": "pg_url", "redis": "redis_url"}[name]
    return name, str(request.getfixturevalue(fixture))


@pytest.fixture
async def backend(backend_url: tuple[str, str], settings: Settings) -> AsyncIterator[Backend]:
    name, url = backend_url
    opened = Backend(name, url, quick(settings))
    yield opened
    await opened.close()


@pytest.fixture
async def bus(backend: Backend) -> EventBus:
    return await backend.bus()


async def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


async def take(bus: EventBus, group: str, consumer: str, want: int, *, ack: bool = True,
               count: int = 100) -> list[Delivery]:
    """Read until `want` deliveries have arrived."""
    got: list[Delivery] = []
    deadline = time.monotonic() + PATIENCE
    while len(got) < want and time.monotonic() < deadline:
        batch = await bus.read(group, consumer, count=min(count, want - len(got)), block_ms=100)
        if ack:
            await bus.ack(batch)
        got += batch
    return got


async def test_publish_returns_once_the_event_is_stored(bus: EventBus) -> None:
    one_by_one, together = events(200), events(50, first=200)
    await asyncio.gather(*(bus.publish(event) for event in one_by_one))
    await bus.publish_many(together)

    stored = await bus.replay(limit=1000)
    assert [event.id for _, event in stored] == ids(one_by_one + together)
    assert [event for _, event in stored] == one_by_one + together  # the envelope intact


async def test_events_published_concurrently_from_many_buses_all_arrive(
    backend: Backend, settings: Settings
) -> None:
    """Publishers racing a reader: the reader must never step past an event that is
    still being written (on PostgreSQL, a position whose transaction commits late)."""
    patient = quick(settings, event_redelivery_seconds=60)
    publishers = [await backend.bus(patient) for _ in range(3)]
    reader = await backend.bus(patient)
    batches = [events(5, first=100 * i + 5 * j) for i in range(3) for j in range(20)]
    published = [event for batch in batches for event in batch]

    async def publish(bus: EventBus, mine: list[list[Event]]) -> None:
        for batch in mine:
            await asyncio.gather(*(bus.publish(event) for event in batch))

    publishing = asyncio.gather(*(publish(bus, batches[i * 20:(i + 1) * 20])
                                  for i, bus in enumerate(publishers)))
    got = await take(reader, "indexer", "c", len(published), count=3)
    await publishing

    assert sorted(ids(got)) == sorted(ids(published))


async def test_a_reader_does_not_skip_a_publish_still_committing(
    pg_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL hands out positions before commit: an event whose transaction
    commits after a later one's must still be delivered, not skipped by the cursor."""
    backend = Backend("postgresql", pg_url, quick(settings, event_redelivery_seconds=60))
    slow, fast, reader = [await backend.bus() for _ in range(3)]
    await reader.read("indexer", "c", block_ms=0)
    assert isinstance(slow, SqlEventBus)
    inserted, commit = asyncio.Event(), asyncio.Event()
    transaction = slow.database.transaction

    @asynccontextmanager
    async def slow_to_commit() -> AsyncIterator[AsyncSession]:
        async with transaction() as session:
            yield session
            inserted.set()
            await commit.wait()

    monkeypatch.setattr(slow.database, "transaction", slow_to_commit)
    first, second = events(2)
    try:
        publishing = [asyncio.create_task(slow.publish(first))]
        await inserted.wait()
        publishing.append(asyncio.create_task(fast.publish(second)))
        await asyncio.sleep(0.1)  # the second publish is under way, or done
        seen = await reader.read("indexer", "c", block_ms=100)
        commit.set()
        await asyncio.gather(*publishing)
        seen += await take(reader, "indexer", "c", 2 - len(seen))

        assert ids(seen) == ids([first, second])
    finally:
        commit.set()
        await backend.close()


async def test_every_event_is_delivered_and_acked_ones_do_not_come_back(
    bus: EventBus, backend: Backend
) -> None:
    published = events(20)
    await bus.publish_many(published)

    got = await take(bus, "indexer", "c1", 20, count=7)

    assert sorted(ids(got)) == sorted(ids(published))
    assert {d.attempt for d in got} == {1}
    await asyncio.sleep(backend.settings.event_redelivery_seconds * 2)
    assert await bus.read("indexer", "c2", block_ms=0) == []


async def test_an_event_a_dead_consumer_took_goes_to_another(bus: EventBus) -> None:
    published = events(3)
    await bus.publish_many(published)
    taken = await take(bus, "indexer", "dies", 3, ack=False)
    assert len(taken) == 3
    assert await bus.read("indexer", "survivor", block_ms=0) == []  # not due yet

    again = await take(bus, "indexer", "survivor", 3)

    assert sorted(ids(again)) == sorted(ids(published))
    assert {d.attempt for d in again} == {2}
    assert {d.position for d in again} == {d.position for d in taken}


async def test_each_group_sees_every_event(bus: EventBus) -> None:
    published = events(10)
    await bus.publish_many(published)

    first = await take(bus, "indexer", "a", 10)
    second = await take(bus, "auditor", "b", 10)

    assert sorted(ids(first)) == sorted(ids(second)) == sorted(ids(published))


async def test_an_event_never_acked_becomes_a_dead_letter(
    bus: EventBus, backend: Backend
) -> None:
    poison, fine = events(1), events(1, first=1)
    await bus.publish_many(poison + fine)
    first = await take(bus, "indexer", "c", 2, ack=False)
    assert ids(first) == ids(poison + fine)
    await bus.ack(first[1:])
    attempts = [first[0].attempt]
    for _ in range(backend.settings.event_max_deliveries - 1):
        [again] = await take(bus, "indexer", "c", 1, ack=False)
        assert again.event.id == poison[0].id
        attempts.append(again.attempt)
    assert attempts == [1, 2, 3]
    assert await bus.dead_letters("indexer") == []  # still in play until it times out

    deadline = time.monotonic() + PATIENCE
    dead: list[Delivery] = []
    announced: list[Delivery] = []  # the bus tells of the dead letter: a new event
    while not dead and time.monotonic() < deadline:
        read = await bus.read("indexer", "c", block_ms=50)
        assert {d.event.type for d in read} <= {DEAD_LETTERED}  # never a 4th delivery
        await bus.ack(read)
        announced += read
        dead = await bus.dead_letters("indexer")

    [letter] = dead
    assert letter.event == poison[0]
    assert letter.attempt == 3
    assert letter.position == first[0].position
    assert await bus.dead_letters("auditor") == []
    await asyncio.sleep(backend.settings.event_redelivery_seconds * 2)
    announced += await take(bus, "indexer", "c", 1 - len(announced))
    assert await bus.read("indexer", "c", block_ms=0) == []
    [announcement] = announced
    assert (announcement.event.type, announcement.event.subject) == (DEAD_LETTERED, "indexer")
    assert announcement.event.data == {
        "group": "indexer", "stream": backend.settings.events_stream,
        "position": letter.position, "attempts": 3, "event_id": poison[0].id,
        "event_type": poison[0].type, "event_subject": poison[0].subject}


async def test_order_is_kept_within_a_stream(bus: EventBus) -> None:
    published = events(30)
    for event in published[:15]:
        await bus.publish(event)
    await bus.publish_many(published[15:])

    got = await take(bus, "indexer", "c", 30, count=7)

    assert ids(got) == ids(published)


async def test_replay_from_a_position(bus: EventBus) -> None:
    published, elsewhere = events(10), events(3, first=100)
    await bus.publish_many(published)
    await bus.publish_many(elsewhere, stream="llmdocs.elsewhere")

    head = await bus.replay(limit=4)
    rest = await bus.replay(head[-1][0], limit=100)

    assert [e for _, e in head] + [e for _, e in rest] == published
    assert await bus.replay(rest[-1][0]) == []
    assert [e for _, e in await bus.replay(stream="llmdocs.elsewhere")] == elsewhere


async def test_forget_deletes_the_events_naming_a_person_wherever_they_are(
        bus: EventBus) -> None:
    """An erasure's: delivered or pending, in any stream named; others stay."""
    kept = events(3)
    naming = [Event(source="llmdocs/test", type="llmdocs.test.noted",
                    data={"user": "alice_1%", "n": n}) for n in range(2)]
    await bus.publish_many([kept[0], naming[0], kept[1]])
    await bus.publish_many([naming[1], kept[2]], stream="llmdocs.elsewhere")
    assert len(await take(bus, "g", "c1", 3, ack=False)) == 3  # pending, unacked

    assert await bus.forget("alice%1", ["llmdocs.events"]) == 0  # text, not a pattern
    assert await bus.forget("alice_1%", ["llmdocs.events", "llmdocs.elsewhere"]) == 2
    assert await bus.forget("alice_1%", ["llmdocs.events", "llmdocs.elsewhere"]) == 0
    assert [e for _, e in await bus.replay()] == kept[:2]
    assert [e for _, e in await bus.replay(stream="llmdocs.elsewhere")] == kept[2:]


async def test_a_group_starting_at_latest_skips_the_past(bus: EventBus) -> None:
    await bus.publish_many(events(3))
    assert await bus.read("late", "c", block_ms=0, start_at="latest") == []
    later = events(2, first=3)
    await bus.publish_many(later)

    got = await take(bus, "late", "c", 2)

    assert ids(got) == ids(later)


async def test_competing_consumers_share_the_work_without_doubles(
    backend: Backend, settings: Settings
) -> None:
    """Two buses (two processes' worth of connections), two consumers each. The ack
    timeout is long, so any event seen twice would be a claiming bug."""
    patient = quick(settings, event_redelivery_seconds=60)
    buses = [await backend.bus(patient), await backend.bus(patient)]
    published = events(300)
    await buses[0].publish_many(published)
    seen: list[str] = []

    async def consume(bus: EventBus, name: str) -> None:
        deadline = time.monotonic() + PATIENCE
        while len(seen) < len(published) and time.monotonic() < deadline:
            batch = await bus.read("workers", name, count=10, block_ms=50)
            seen.extend(ids(batch))
            await bus.ack(batch)

    await asyncio.gather(*(consume(bus, f"{i}-{j}") for i, bus in enumerate(buses)
                           for j in range(2)))

    assert sorted(seen) == sorted(ids(published))


async def test_subscribe_acks_handled_events_and_redelivers_failed_ones(
    bus: EventBus, backend: Backend
) -> None:
    wanted, unwanted = events(3), events(2, type=OTHER_TYPE)
    calls: list[str] = []
    handled: set[str] = set()
    all_handled = asyncio.Event()

    async def handler(event: Event) -> None:
        calls.append(event.id)
        if event.id == wanted[1].id and calls.count(event.id) == 1:
            raise RuntimeError("transient")
        handled.add(event.id)
        if len(handled) == len(wanted):
            all_handled.set()

    subscription = bus.subscribe("indexer", handler, types=[TYPE])
    await bus.publish_many([wanted[0], unwanted[0], wanted[1], unwanted[1], wanted[2]])
    await asyncio.wait_for(all_handled.wait(), PATIENCE)
    await subscription.stop()

    assert sorted(calls) == sorted([*ids(wanted), wanted[1].id])  # never the unwanted
    await asyncio.sleep(backend.settings.event_redelivery_seconds * 2)
    assert await bus.read("indexer", "after", block_ms=0) == []  # all acked, ignored too


async def test_subscribe_batch_takes_whole_reads_and_isolates_a_bad_event(
    bus: EventBus, backend: Backend
) -> None:
    good, poison = events(6), events(1, first=100)[0]
    batches: list[list[str]] = []
    stored: set[str] = set()
    done = asyncio.Event()

    async def handler(batch: list[Event]) -> None:
        batches.append(ids(batch))
        if poison.id in ids(batch):
            raise RuntimeError("cannot store this one")
        stored.update(ids(batch))
        if stored >= set(ids(good)):
            done.set()

    await bus.publish_many([*good[:3], poison, *good[3:]])
    subscription = bus.subscribe_batch("sink", handler)
    await asyncio.wait_for(done.wait(), PATIENCE)
    await subscription.stop()

    assert len(batches[0]) == 7  # the whole read at once
    assert [b for b in batches if len(b) == 1 and b[0] != poison.id]  # then one by one
    assert poison.id not in stored
    await asyncio.sleep(backend.settings.event_redelivery_seconds * 2)
    again = await bus.read("sink", "after", block_ms=0)
    assert ids(again) == [poison.id]  # only the bad one comes back


async def test_stop_ends_a_subscription_that_waits_for_events(bus: EventBus) -> None:
    async def handler(event: Event) -> None: ...

    subscription = bus.subscribe("indexer", handler)
    await asyncio.sleep(0.05)  # let it block in read
    await asyncio.wait_for(subscription.stop(), PATIENCE)


@pytest.mark.parametrize("backend_name", ["redis", "postgresql"])
async def test_publish_never_raises_when_the_backend_is_down(
    backend_name: str, settings: Settings
) -> None:
    port = free_port()  # nothing listens there
    if backend_name == "redis":
        settings = quick(settings, events_url=f"redis://127.0.0.1:{port}/0")
    database = Database(f"postgresql+asyncpg://nobody@127.0.0.1:{port}/none")
    bus = create_event_bus(settings, database)
    await bus.start()
    try:
        await bus.publish(events(1)[0])
        await asyncio.gather(*(bus.publish(event) for event in events(5)))
        await bus.publish_many(events(4))
        with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
            await bus.ping()
        assert isinstance(bus, SpoolingEventBus)
        assert bus.spool.pending == 10
    finally:
        await bus.close()
        await database.dispose()


def spooled_lines(settings: Settings) -> int:
    return sum(len(path.read_text().splitlines())
               for path in (settings.data_dir / "spool").rglob("*.jsonl"))


async def test_events_published_while_redis_is_down_arrive_when_it_is_back(
    redis_server: RedisServer, settings: Settings
) -> None:
    backend = Backend("redis", redis_server.url, quick(settings))
    bus = await backend.bus()
    try:
        await bus.publish_many(events(5))  # before the outage
        redis_server.stop()
        published = events(30, first=5)
        for event in published[:10]:
            await bus.publish(event)
        await asyncio.gather(*(bus.publish(event) for event in published[10:20]))
        await bus.publish_many(published[20:])
        assert spooled_lines(backend.settings) == 30

        redis_server.start()
        got = await take(bus, "indexer", "c", 35)

        assert {d.event.id for d in got[5:]} == set(ids(published))
        assert [d.event for d in got[5:]] == published  # exactly as published, in order
        assert isinstance(bus, SpoolingEventBus)
        await until(lambda: bus.spool.pending == 0)  # the flusher forgets what it sent
        assert spooled_lines(backend.settings) == 0
    finally:
        await backend.close()


async def test_spooled_events_survive_a_restart_and_any_bus_sends_them(
    sqlite_url: str, settings: Settings
) -> None:
    """Two buses spool while their database is unreachable and close (their process
    ends); a bus started later on the same data directory sends every event."""
    settings = quick(settings)
    down = [Database(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none")
            for _ in range(2)]
    buses = [create_event_bus(settings, database) for database in down]
    published = events(20)
    for bus in buses:
        await bus.start()
    await buses[0].publish_many(published[:10])
    await asyncio.gather(*(buses[1].publish(event) for event in published[10:]))
    for bus, database in zip(buses, down, strict=True):
        await bus.close()
        await database.dispose()
    assert spooled_lines(settings) == 20

    backend = Backend("sqlite", sqlite_url, settings)
    bus = await backend.bus()
    try:
        got = await take(bus, "indexer", "c", 20)
        assert sorted(ids(got)) == sorted(ids(published))
        assert [d.event for d in got if d.event in published[:10]] == published[:10]
        assert isinstance(bus, SpoolingEventBus)
        await until(lambda: bus.spool.pending == 0)
        assert spooled_lines(settings) == 0
    finally:
        await backend.close()


CONSUMER_SCRIPT = """
import asyncio, sys
from llmdocs.core.config import Settings
from llmdocs.core.db import Database
from llmdocs.core.events.sql import SqlEventBus

async def main() -> None:
    database = Database(sys.argv[1])
    bus = SqlEventBus(database, Settings(data_dir=sys.argv[2], event_redelivery_seconds=60))
    while batch := await bus.read("workers", "other-process", count=5, block_ms=0):
        await bus.ack(batch)
        print(*(d.event.id for d in batch), sep="\\n", flush=True)
    await database.dispose()

asyncio.run(main())
"""


async def test_consumers_in_two_processes_share_a_sqlite_file(
    sqlite_url: str, settings: Settings, tmp_path: Path
) -> None:
    backend = Backend("sqlite", sqlite_url, quick(settings, event_redelivery_seconds=60))
    bus = await backend.bus()
    try:
        published = events(500)
        await bus.publish_many(published)
        other = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CONSUMER_SCRIPT, sqlite_url, str(tmp_path / "other"),
            stdout=asyncio.subprocess.PIPE)
        assert other.stdout is not None
        theirs = [(await asyncio.wait_for(other.stdout.readline(), PATIENCE)).decode().strip()]
        ours: list[str] = []
        while batch := await bus.read("workers", "this-process", count=5, block_ms=0):
            ours += ids(batch)
            await bus.ack(batch)
        theirs += (await other.stdout.read()).decode().split()
        assert await other.wait() == 0

        assert sorted(ours + theirs) == sorted(ids(published))  # none lost, none twice
    finally:
        await backend.close()


class SwitchableBus(SpoolingEventBus):
    """The shared publishing layer over a backend the test switches off and on."""

    kind = "switchable"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.up = True
        self.successes_left: int | None = None  # fail after this many round-trips
        self.round_trips: list[list[str]] = []

    async def _append(self, items: Sequence[Outgoing]) -> None:
        if not self.up or self.successes_left == 0:
            raise ConnectionError("backend down")
        if self.successes_left is not None:
            self.successes_left -= 1
        self.round_trips.append([item.event.id for item in items])

    def received(self) -> list[str]:
        return [event_id for trip in self.round_trips for event_id in trip]

    async def read(self, group: str, consumer: str, *, count: int = 100,
                   block_ms: int = 1000, stream: str | None = None,
                   start_at: StartAt = "earliest") -> list[Delivery]:
        raise NotImplementedError

    async def ack(self, deliveries: Sequence[Delivery], stream: str | None = None) -> None:
        raise NotImplementedError

    async def dead_letters(self, group: str, *, limit: int = 100,
                           stream: str | None = None) -> list[Delivery]:
        raise NotImplementedError

    async def replay(self, after: str | None = None, *, limit: int = 100,
                     stream: str | None = None) -> list[tuple[str, Event]]:
        raise NotImplementedError

    async def ping(self) -> float:
        raise NotImplementedError

    async def forget(self, text: str, streams: Sequence[str]) -> int:
        raise NotImplementedError


def spooled_ids(settings: Settings) -> list[str]:
    return [Outgoing.parse(line).event.id
            for path in sorted((settings.data_dir / "spool").rglob("*.jsonl"))
            for line in path.read_text().splitlines()]


async def test_concurrent_publishes_share_a_round_trip(settings: Settings) -> None:
    bus = SwitchableBus(quick(settings))
    await bus.start()
    published = events(100)
    await asyncio.gather(*(bus.publish(event) for event in published))
    await bus.close()

    assert bus.received() == ids(published)
    assert len(bus.round_trips) <= 2  # group commit: not one round-trip per event


async def test_after_an_outage_new_events_queue_behind_the_spooled_ones(
    settings: Settings
) -> None:
    settings = quick(settings)
    bus = SwitchableBus(settings)  # not started: no flusher yet
    during, after = events(5), events(5, first=5)
    bus.up = False
    await bus.publish_many(during)
    bus.up = True
    await asyncio.sleep(settings.spool_flush_seconds * 2)  # the retry pause is over
    for event in after:
        await bus.publish(event)
    assert bus.round_trips == []  # not ahead of the spooled events
    assert spooled_ids(settings) == ids(during + after)

    await bus.start()
    await until(lambda: bus.spool.pending == 0)
    await bus.close()

    assert bus.received() == ids(during + after)


async def test_a_flush_cut_short_forgets_only_what_was_sent(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool, "FLUSH_CHUNK", 3)
    settings = quick(settings)
    bus = SwitchableBus(settings)
    published = events(10)
    bus.up = False
    await asyncio.gather(*(bus.publish(event) for event in published))
    bus.up, bus.successes_left = True, 1
    await bus.start()
    await until(lambda: bus.spool.pending < 10)
    assert bus.received() == ids(published[:3])
    assert spooled_ids(settings) == ids(published[3:])

    bus.successes_left = None
    await until(lambda: bus.spool.pending == 0)
    await bus.close()
    assert bus.received() == ids(published)
    assert spooled_ids(settings) == []


async def test_events_older_than_the_retention_are_forgotten(backend: Backend) -> None:
    bus = await backend.bus(quick(backend.settings, event_retention_seconds=0.5))
    old = events(4)
    await bus.publish_many(old)
    pending = await take(bus, "slow", "c", 1, ack=False, count=1)  # owes an ack
    await asyncio.sleep(0.6)
    new = events(2, first=10)
    await bus.publish_many(new)  # publishing trims

    kept = [e.id for _, e in await bus.replay(limit=100)]
    assert kept[-2:] == ids(new) and not set(ids(old[1:])) & set(kept)
    if backend.name != "redis":  # SQL keeps what a group still owes; Redis trims by age only
        assert kept == ids(pending) + ids(new)
        again = await bus.read("slow", "c2", count=10, block_ms=1000)
        assert ids(pending)[0] in ids(again)


async def test_a_transactions_events_are_published_if_and_only_if_it_commits(
        backend: Backend) -> None:
    """The outbox: a transaction's events go out with its commit (on the SQL bus as rows
    of that very transaction) and never when it rolls back."""
    bus = await backend.bus()
    database = backend.databases[-1]
    async with database.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS notes (n INTEGER)"))
    kept, dropped = events(2), events(1, first=2)
    with pytest.raises(RuntimeError):
        async with bus.transaction(database) as (conn, outbox):
            await conn.execute(text("INSERT INTO notes VALUES (1)"))
            outbox.extend(dropped)
            raise RuntimeError("the write fails after announcing itself")
    async with bus.transaction(database) as (conn, outbox):
        await conn.execute(text("INSERT INTO notes VALUES (2)"))
        outbox.extend(kept)

    assert ids(await take(bus, "readers", "r1", 2)) == ids(kept)
    assert [event.id for _, event in await bus.replay(limit=10)] == ids(kept)
    async with database.engine.connect() as conn:
        assert (await conn.execute(text("SELECT n FROM notes"))).scalars().all() == [2]
