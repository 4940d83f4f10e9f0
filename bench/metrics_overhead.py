"""What metrics cost: NodeStats on the burst path, and one /metrics scrape with many jobs.

    .venv/bin/python bench/metrics_overhead.py [--n 10000] [--rounds 4] [--scrape-jobs 100000]

Starts a private redis-server and runs a real in-process Node (a hand-moved clock near the
real time, so Redis TIME still fences it) whose N jobs (`every = "10s"`) are all due at each
10-second boundary. For each burst it times the whole `turn()` (claim and enqueue of N slots)
and, inside it, the `NodeStats.dispatched` call (timed by a thin subclass), and prints their
ratio. Then a node with --scrape-jobs jobs and metrics_jobs_max = 1000 takes over, and one
scrape (`generate_latest` of its registry, Redis reads included) is timed a few times.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import REPO_ROOT, Procs, RedisServer

sys.path.insert(0, str(REPO_ROOT))

from prometheus_client import generate_latest

from scheduler.config import load_config
from scheduler.dispatch import Sent
from scheduler.engine import Due
from scheduler.exposition import metrics_registry
from scheduler.metrics import NodeStats
from scheduler.node import Node
from tests.clocks import ManualClock

STEP_S = 10


class TimedStats(NodeStats):
    """NodeStats that remembers how long each `dispatched` took."""

    def __init__(self) -> None:
        super().__init__()
        self.took_s: list[float] = []

    def dispatched(self, due: Due, sent: Sent, now_s: float) -> None:
        started = time.perf_counter()
        super().dispatched(due, sent, now_s)
        self.took_s.append(time.perf_counter() - started)


def write_config(path: Path, redis_url: str, namespace: str, count: int, jobs_max: int) -> Path:
    lines = [
        "[scheduler]",
        f'redis_url = "{redis_url}"',
        f'namespace = "{namespace}"',
        'lease_ttl = "30s"',
        'max_clock_offset = "1m"',
        f"metrics_jobs_max = {jobs_max}",
    ]
    width = len(str(count))
    for index in range(count):
        lines += [
            f"[jobs.j{index:0{width}d}]",
            'task = "bench.noop"',
            f'every = "{STEP_S}s"',
            'queue = "bench"',
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def leading_node(config: Path, stats: NodeStats | None = None) -> tuple[Node, ManualClock]:
    clock = ManualClock(time.time())  # near the real time: Redis TIME fences the claims
    node = Node(load_config(config), "bench", clock)
    if stats is not None:  # counting per job as with the listener on (it calls follow)
        node.stats = stats
        stats.follow(lambda: node.jobset.jobs, lambda: node.config.scheduler.metrics_jobs_max)
    node.heartbeat.beat()
    assert node.lease.try_acquire(), "could not take the lease"
    node.turn()
    assert node.engine is not None
    return node, clock


def bursts(
    redis: RedisServer, workdir: Path, count: int, runs: int, stats: TimedStats, label: str
) -> list[float]:
    """The time of each turn that claims and enqueues `count` slots, prepared ahead as the
    node prepares them (a second and a half before the slot)."""
    namespace = f"burst-{label}"
    config = write_config(workdir / f"{namespace}.toml", redis.url, namespace, count, 1000)
    node, clock = leading_node(config, stats)
    turns = []
    for _ in range(runs):
        assert node.engine is not None
        next_s = node.engine.next_slot_s()
        assert next_s is not None
        clock.advance(next_s - 1.5 - clock.wall_s)
        node.lease.renew()
        node.turn()  # builds the burst's messages ahead
        clock.advance(1.501)
        started = time.perf_counter()
        node.turn()
        turns.append(time.perf_counter() - started)
        redis.client.delete("bench")  # the queue: keep Redis's memory flat between bursts
    node.factory.close()
    redis.client.flushdb()  # the next round starts from the same empty Redis
    return turns


class Before(TimedStats):
    """The stub NodeStats was before metrics: nothing counted."""

    def dispatched(self, due: Due, sent: Sent, now_s: float) -> None:
        started = time.perf_counter()
        self.took_s.append(time.perf_counter() - started)


def compare(redis: RedisServer, workdir: Path, count: int, runs: int, rounds: int) -> None:
    """Both variants in alternating rounds (B A, A B, B A...), each from an empty Redis, so
    neither always runs second; the ratio is of the medians over every round."""
    after, before = TimedStats(), Before()
    turns: dict[str, list[float]] = {"before": [], "after": []}
    for index in range(rounds):
        order = [("before", before), ("after", after)]
        for label, stats in order if index % 2 == 0 else order[::-1]:
            turns[label] += bursts(redis, workdir, count, runs, stats, f"{label}-{index}")
    fired = after.snapshot().fires.get("enqueued", 0)
    assert fired == count * runs * rounds, f"fired {fired}, expected {count * runs * rounds}"
    before_s, after_s = statistics.median(turns["before"]), statistics.median(turns["after"])
    stat_s = statistics.median(after.took_s)
    print(f"burst of {count} fires, median of {runs * rounds} bursts each ({rounds} rounds):")
    print(f"  turn with NodeStats:          {after_s * 1000:8.1f} ms")
    ratio, share = after_s / before_s, stat_s / after_s
    print(f"  turn with the stub (before):  {before_s * 1000:8.1f} ms  (after/before {ratio:.3f})")
    print(f"  NodeStats.dispatched itself:  {stat_s * 1000:8.2f} ms  ({share:.2%} of the turn)")


def scrape(redis: RedisServer, workdir: Path, count: int, runs: int) -> None:
    config = write_config(workdir / "scrape.toml", redis.url, "scrape", count, 1000)
    started = time.perf_counter()
    node, _ = leading_node(config)
    print(f"scrape with {count} jobs (take-over {time.perf_counter() - started:.1f} s):")
    redis.client.hset(node.keys.last_success, mapping=dict.fromkeys(node.jobs, "1800000000.5"))
    registry = metrics_registry(node)
    took, size = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        size = len(generate_latest(registry))
        took.append(time.perf_counter() - started)
    print(f"  one scrape: median {statistics.median(took) * 1000:.1f} ms, "
          f"max {max(took) * 1000:.1f} ms, {size} bytes")  # fmt: skip
    node.factory.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=4, help="bursts per variant (at most 5)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds of both")
    parser.add_argument("--scrape-jobs", type=int, default=100_000)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="scheduler-metrics-"))
    procs = Procs(workdir / "logs")
    try:
        redis = RedisServer(procs, workdir / "redis")
        runs = max(1, min(args.runs, math.floor(50 / STEP_S)))
        compare(redis, workdir, args.n, runs, max(1, args.rounds))
        scrape(redis, workdir, args.scrape_jobs, 5)
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
