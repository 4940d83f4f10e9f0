"""1. Burst: N jobs due at the same instant; from the slot until the last message is in Redis.

Each scheduler gets the N jobs in a config written before it starts, all due at one instant
chosen a few seconds after it is expected to be ready (ours: a 6-field crontab pinned to that
second; celery beat and RedBeat: a crontab pinned to that minute, the finest they know). A run
whose scheduler is not ready one second before the instant is thrown away and started again
with more time. The collector times each message as it lands on the broker list.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ours
from common import (
    Collector,
    Procs,
    RedisServer,
    busiest_commands,
    message_headers,
    next_boundary,
    sleep_until_wall,
    slot_seconds,
    spread,
)
from jobsets import QUEUE, at_instant
from peers.drivers import PEERS, Peer

READY_MARGIN_S = 1.0  # ready at least this long before the instant, or the run is redone
SETTLE_S = 2.0  # after the last message: anything more (a repeat) would show in this time


@dataclass(frozen=True)
class BurstPlan:
    ours_n: tuple[int, ...]
    peers_n: tuple[int, ...]
    repeats: int  # runs of ours per N (the median is reported); peers run once per N
    window_s: float  # how long after the instant we wait for the last message


def _startup_guess_s(name: str, n: int) -> float:
    """Generous first guesses of start-up time; a late start is redone with twice as much."""
    per_10k = {"scheduler": 3.0, "celery beat": 3.0, "RedBeat": 15.0}[name]
    return 4.0 + per_10k * n / 10_000


def _measure(
    server: RedisServer,
    proc_cpu: Any,
    instant_s: int,
    n: int,
    window_s: float,
) -> dict[str, Any]:
    """Watch the queue from before the instant until n messages (or the window's end)."""
    sleep_until_wall(instant_s - 2.0)
    with Collector(server, QUEUE) as collector:
        sleep_until_wall(instant_s - 0.5)
        cpu_before, redis_cpu_before = proc_cpu(), server.proc.cpu_s()
        redis_before = server.command_usec()
        sleep_until_wall(instant_s)
        complete = collector.wait_for(n, timeout_s=window_s)
        if complete:
            time.sleep(SETTLE_S)
        cpu_after, redis_cpu_after = proc_cpu(), server.proc.cpu_s()
        redis_after = server.command_usec()
    arrivals = collector.arrivals()
    lateness = [a.seen_s - instant_s for a in arrivals]
    within = [late for late in lateness if late <= window_s]
    result: dict[str, Any] = {
        "n": n,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "instant": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(instant_s)),
        "enqueued": len(arrivals),
        "enqueued_within_window": len(within),
        "window_s": window_s,
        "complete": len(within) >= n,
        "first_s": round(min(lateness), 4) if lateness else None,
        "last_s": round(max(within), 4) if len(within) >= n else None,
        "lateness": spread(lateness),
        "cpu_s": round(cpu_after - cpu_before, 3),
        "collector_polls": collector.polls,
        "redis_cpu_s": round(redis_cpu_after - redis_cpu_before, 3),
        "redis_commands": busiest_commands(redis_before, redis_after),
    }
    if len(within) > 1:
        duration = max(within) - min(within)
        result["messages_per_s"] = round((len(within) - 1) / duration) if duration > 0 else None
    result["_arrivals"] = arrivals
    return result


def run_ours(server: RedisServer, workdir: Path, n: int, window_s: float) -> dict[str, Any]:
    allowance = _startup_guess_s(ours.NAME, n)
    for attempt in range(3):
        server.flush()
        procs = Procs(workdir / "logs")
        instant = next_boundary(time.time() + allowance, 1)
        config = ours.write_config(
            workdir / f"burst-{n}.toml", server.url, at_instant(n, instant, seconds=True)
        )
        try:
            node = ours.start_node(procs, config, "a", tag=f"burst{n}-")
            try:
                ready_at = ours.wait_leading(node, timeout_s=instant - READY_MARGIN_S - time.time())
            except TimeoutError:
                allowance *= 2
                print(f"  ours N={n}: not ready in time (attempt {attempt + 1}), more time")
                continue
            result = _measure(server, node.cpu_s, instant, n, window_s)
            result["ready_s"] = round(ready_at - node.started_at, 3)
            result["rss_peak_mib"] = round(node.memory_kb()["VmHWM"] / 1024, 1)
        finally:
            procs.stop_all()
        arrivals = result.pop("_arrivals")
        slots = [message_headers(a.raw).get("scheduler_slot") for a in arrivals]
        jobs = [message_headers(a.raw).get("scheduler_job") for a in arrivals]
        result["wrong_slot"] = sum(1 for s in slots if s is None or slot_seconds(s) != instant)
        result["repeated"] = len(jobs) - len(set(jobs))
        result["missing"] = n - len(set(jobs))
        return result
    raise RuntimeError(f"our scheduler with {n} jobs never got ready in time")


def run_peer(
    peer: Peer, server: RedisServer, workdir: Path, n: int, window_s: float
) -> dict[str, Any]:
    allowance = _startup_guess_s(peer.name, n)
    for attempt in range(3):
        server.flush()
        procs = Procs(workdir / "logs")
        instant = next_boundary(time.time() + allowance, 60)
        jobs = at_instant(n, instant, seconds=False)
        try:
            proc = peer.start(procs, server.url, jobs, workdir, tag=f"-burst{n}")
            try:
                ready_at = peer.wait_ready(proc, timeout_s=instant - READY_MARGIN_S - time.time())
            except TimeoutError:
                allowance *= 2
                print(f"  {peer.name} N={n}: not ready in time (attempt {attempt + 1}), more time")
                continue
            result = _measure(server, proc.cpu_s, instant, n, window_s)
            result["ready_s"] = round(ready_at - proc.started_at, 3)
            result["rss_peak_mib"] = round(proc.memory_kb()["VmHWM"] / 1024, 1)
        finally:
            procs.stop_all()
        arrivals = result.pop("_arrivals")
        ids = [message_headers(a.raw).get("id") for a in arrivals]
        result["repeated"] = len(ids) - len(set(ids))
        return result
    raise RuntimeError(f"{peer.name} with {n} jobs never got ready in time")


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose time-to-last-message is the median (incomplete runs count as slowest)."""
    ordered = sorted(runs, key=lambda r: (r["last_s"] is None, r["last_s"] or 0))
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["runs_last_s"] = [r["last_s"] for r in runs]
    return chosen


def run(server: RedisServer, workdir: Path, plan: BurstPlan) -> dict[str, Any]:
    results: dict[str, Any] = {"plan": plan.__dict__, "schedulers": {}}
    ours_runs: dict[str, Any] = {}
    for n in plan.ours_n:
        runs = []
        for _ in range(plan.repeats):
            runs.append(run_ours(server, workdir, n, plan.window_s))
            print(f"  ours N={n}: last message {runs[-1]['last_s']} s after the slot")
        ours_runs[str(n)] = _median_run(runs)
        ours_runs[str(n)]["scheduler_version"] = ours.version()
    results["schedulers"][ours.NAME] = ours_runs
    for peer in PEERS:
        peer_runs: dict[str, Any] = {}
        for n in plan.peers_n:
            peer_runs[str(n)] = run_peer(peer, server, workdir, n, plan.window_s)
            got = peer_runs[str(n)]
            print(
                f"  {peer.name} N={n}: {got['enqueued_within_window']}/{n} within "
                f"{plan.window_s:.0f}s, last {got['last_s']}"
            )
        results["schedulers"][peer.name] = peer_runs
    return results
