"""Scale-out: documents per second on one process vs separate processes, same run.

Every model call goes to a fake OpenAI-compatible server answering at once (in this
process), so what is measured is llmdocs' own work per document. Two deployments run
side by side, each started here and fed the same load:

- one process: `llmdocs up` (the six services of the main job in one process, SQLite in
  a temporary data dir), as a user starts it;
- distributed: PostgreSQL and Redis on loopback (llmdocs.devservers), every service its
  own `llmdocs serve` process, two doc-store replicas behind the clients' balancing
  (tests/cluster.py): seven processes.

Load: closed-loop clients, each posting `POST /execute-query` (a synchronous wait for the
document) for the stored example spec and posting again once answered, until `--docs`
documents were requested at that concurrency. Levels alternate between the deployments
(which goes first swaps each level), so a busy machine slows both alike. Per deployment
and level: documents per second (200 answers over the level's wall time; the median over
`--rounds`), p50 and p95 latency (over all rounds), CPU ms per document of the
deployment's processes (llmdocs', PostgreSQL's, Redis'; unlike the wall time, barely
moved by other work on the machine), the cores they used meanwhile (CPU seconds over wall
seconds: far under what the deployment could use means the machine was busy with other
work, and docs/s then say more about the machine than about llmdocs), this process's own
CPU ms per document (the clients and the fake model, on the same cores), and any answer
that was not a 200 (a finding: its log lines are printed).

    ratio       = best docs/s distributed / best docs/s one process   (each at its best level)
    efficiency  = ratio / min(processes, cores)

One process runs one event loop, so it uses one core at most; the distributed deployment
could use min(its processes, the cores this process may run on) = 2 on a 2-core machine.
Efficiency 1.0 would mean every added core gave a whole one-process worth of documents;
the load generator, the fake model, PostgreSQL and Redis share those cores, so on a small
machine it stays well below. Last, per deployment, the load at which p95 first passes 2 s
(the level's docs/s and concurrency), or "not reached up to" the highest level.

Usage: .venv/bin/python bench/scale.py [--levels 1,2,4,8,16,32] [--docs 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import uvicorn
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from cluster import SERVICES, Cluster, running_cluster
from ecosystem import store_spec, token
from llmdocs.core.config import Settings
from llmdocs.devservers import PostgresServer, RedisServer, free_port
from llmdocs.runtime import Server, run
from services.orchestrator.fakellm import fake_llm, provider_env

QUERY = "Create API documentation for user service"
P95_LIMIT = 2.0  # seconds
ANSWER_GUARD = 600.0  # a hang guard for one request, not a performance bound


@dataclass
class Level:
    """What one deployment did at one concurrency, over all rounds."""

    rates: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0
    driver_seconds: float = 0.0  # this process's CPU: the clients and the fake model
    wall_seconds: float = 0.0
    answered: int = 0
    failures: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    def per_doc_ms(self, seconds: float) -> float:
        return seconds * 1000 / self.answered if self.answered else float("nan")

    def latency(self, percent: int) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[percent - 1]


@dataclass
class Deployment:
    name: str
    cluster: Cluster
    servers: list[int]  # the pids of its database and Redis servers, if any
    spec_id: str = ""
    levels: dict[int, Level] = field(default_factory=dict)

    def cpu(self) -> float:
        """CPU seconds its processes (llmdocs', PostgreSQL's, Redis') have used so far."""
        roots = [psutil.Process(pid) for pid in
                 {p.pid for p in self.cluster.processes.values()} | set(self.servers)]
        return sum(sum(p.cpu_times()[:2]) for root in roots
                   for p in (root, *root.children(recursive=True)))


@contextmanager
def one_process(root: Path, env: Mapping[str, str]) -> Iterator[Deployment]:
    """`llmdocs up` with the services `running_cluster` starts, on SQLite; the one process
    stands for every service in the returned cluster."""
    ports = {key: free_port() for key in SERVICES}
    secret = "one-process-" + "o" * 40
    settings = Settings(jwt_secret=SecretStr(secret), data_dir=root / "data",
                        inprocess_calls=False,
                        ).model_copy(update={f"{key}_port": p for key, p in ports.items()})
    cluster = Cluster(settings, {
        **os.environ, **env, "LLMDOCS_JWT_SECRET": secret,
        "LLMDOCS_DATA_DIR": str(root / "data"), "XDG_STATE_HOME": str(root / "state"),
        "LLMDOCS_DISCOVERY_DISCOVER_ON_START": "false", "LLMDOCS_LOG_LEVEL": "WARNING",
        **{f"LLMDOCS_{key.upper()}_PORT": str(p) for key, p in ports.items()}}, root, ports)
    up = subprocess.Popen(
        [sys.executable, "-m", "llmdocs", "up", "--log-format", "console",
         *(arg for key in SERVICES for arg in ("-s", key))], env=cluster.env, cwd=root,
        stdout=(root / "up.log").open("ab"), stderr=subprocess.STDOUT)
    cluster.processes = dict.fromkeys(SERVICES, up)
    try:
        for key in SERVICES:
            cluster.wait_listening(key)
        yield Deployment("one process", cluster, [])
    finally:
        cluster.stop()


@contextmanager
def distributed(root: Path, env: Mapping[str, str]) -> Iterator[Deployment]:
    """PostgreSQL, Redis and a process per service, two doc-store replicas."""
    with ExitStack() as stack:
        postgres = PostgresServer().start()
        stack.callback(postgres.cleanup)
        redis = RedisServer().start()
        stack.callback(redis.cleanup)
        cluster = stack.enter_context(running_cluster(
            root, postgres.create_database("scale"), redis.url, replicas={"docstore": 2},
            env=env))
        postmaster = int((postgres.data / "postmaster.pid").read_text().split()[0])
        assert redis.process is not None
        yield Deployment("distributed", cluster, [postmaster, redis.process.pid])


async def load(deployment: Deployment, concurrency: int, docs: int) -> None:
    """`docs` documents from `concurrency` closed-loop clients, added to the level."""
    settings = deployment.cluster.settings
    level = deployment.levels.setdefault(concurrency, Level())
    numbers = iter(range(docs))
    answered = 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal answered
        for _ in numbers:  # shared: a client takes the next document once answered
            started = time.perf_counter()
            try:
                answer = await http.post("/execute-query", json={
                    "query": QUERY, "spec_document_id": deployment.spec_id})
                outcome = "200" if answer.status_code == 200 else (
                    f"{answer.status_code} {answer.text[:200]}")
            except httpx.HTTPError as exc:
                outcome = f"{type(exc).__name__} {exc}"
            level.latencies.append(time.perf_counter() - started)
            if outcome == "200":
                answered += 1
            else:
                level.failures[outcome] += 1

    async with httpx.AsyncClient(
            base_url=settings.url_for("interpreter"), timeout=ANSWER_GUARD,
            headers={"Authorization": f"Bearer {token(settings)}"}) as http:
        cpu, driver, started = deployment.cpu(), time.process_time(), time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        wall = time.perf_counter() - started
        level.rates.append(answered / wall)
        level.wall_seconds += wall
        level.cpu_seconds += deployment.cpu() - cpu
        level.driver_seconds += time.process_time() - driver
    level.answered += answered


def report(deployments: list[Deployment]) -> None:
    print(f"\n{'deployment @clients':<20} {'docs/s':>8} {'p50 s':>7} {'p95 s':>7} "
          f"{'CPU ms/doc':>11} {'cores used':>11} {'driver ms/doc':>14} {'failed':>7}")
    for d in deployments:
        for concurrency, level in d.levels.items():
            print(f"{f'{d.name} @{concurrency}':<20} {level.rate:>8.2f} {level.latency(50):>7.2f} "
                  f"{level.latency(95):>7.2f} {level.per_doc_ms(level.cpu_seconds):>11.0f} "
                  f"{level.cpu_seconds / level.wall_seconds:>11.2f} "
                  f"{level.per_doc_ms(level.driver_seconds):>14.0f} "
                  f"{sum(level.failures.values()):>7}")
    one, dist = deployments
    best = {d.name: max(d.levels.items(), key=lambda item: item[1].rate) for d in deployments}
    cores = min(len({p.pid for p in dist.cluster.processes.values()}),
                len(os.sched_getaffinity(0)))
    ratio = best[dist.name][1].rate / best[one.name][1].rate
    print(f"\nbest: {one.name} {best[one.name][1].rate:.2f} docs/s at {best[one.name][0]} "
          f"clients; {dist.name} {best[dist.name][1].rate:.2f} docs/s at "
          f"{best[dist.name][0]} clients")
    print(f"scaling ratio {ratio:.2f}x over {cores} cores: efficiency {ratio / cores:.2f}")
    cpu = {d.name: statistics.median(lv.per_doc_ms(lv.cpu_seconds) for lv in d.levels.values())
           for d in deployments}
    print(f"CPU per document (median over levels): {one.name} {cpu[one.name]:.0f} ms, "
          f"{dist.name} {cpu[dist.name]:.0f} ms ({cpu[dist.name] / cpu[one.name]:.2f}x)")
    for d in deployments:
        passed = next(((c, lv) for c, lv in d.levels.items()
                       if lv.latency(95) > P95_LIMIT), None)
        print(f"p95 over {P95_LIMIT:.0f} s, {d.name}: " + (
            f"at {passed[1].rate:.2f} docs/s ({passed[0]} clients)" if passed else
            f"not reached up to {max(d.levels)} clients"))
    for d in deployments:
        for concurrency, level in d.levels.items():
            for outcome, count in level.failures.items():
                print(f"\nFAILED {count}x, {d.name} at {concurrency} clients: {outcome}")
        if any(level.failures for level in d.levels.values()):
            print(d.cluster.log())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", default="1,2,4,8,16,32",
                        help="concurrency levels, comma-separated")
    parser.add_argument("--docs", type=int, default=32, help="documents per level and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    levels = [int(c) for c in args.levels.split(",")]
    fake_port = free_port()
    fake = Server(uvicorn.Config(fake_llm(0.0), host="127.0.0.1", port=fake_port,
                                 log_level="warning"))
    fake_task = asyncio.create_task(fake.serve())
    env = provider_env(f"http://127.0.0.1:{fake_port}")
    try:
        with tempfile.TemporaryDirectory(prefix="llmdocs-scale-") as tmp, ExitStack() as stack:
            roots = [Path(tmp) / name for name in ("one", "distributed")]
            for root in roots:
                root.mkdir()
            deployments = [stack.enter_context(one_process(roots[0], env)),
                           stack.enter_context(distributed(roots[1], env))]
            for d in deployments:
                d.spec_id = await store_spec(d.cluster.settings)
                await load(d, 1, 1)  # warms caches and connections
                d.levels.clear()
            for round_ in range(args.rounds):
                for i, concurrency in enumerate(levels):
                    turn = deployments if (i + round_) % 2 == 0 else deployments[::-1]
                    for d in turn:
                        await load(d, concurrency, args.docs)
                        print(f"round {round_ + 1}, {d.name}, {concurrency} clients: "
                              f"{d.levels[concurrency].rates[-1]:.2f} docs/s",
                              file=sys.stderr, flush=True)
            report(deployments)
    finally:
        fake.should_exit = True
        await asyncio.gather(fake_task, return_exceptions=True)


if __name__ == "__main__":
    run(main())  # the loop `llmdocs up` runs on
