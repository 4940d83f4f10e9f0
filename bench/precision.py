"""2. Precision: N jobs every second for a while; how late each slot lands, and whether all do.

Ours: `every = "1s"` jobs, so each message names its slot (`scheduler_slot`); lateness is the
time the collector first counted the message minus that slot. Per slot we also take the time
until its last message landed (the whole slot enqueued). celery beat and RedBeat run the same
jobs as 1-second interval entries; their messages name no slot, and their interval is counted
from the previous run rather than a grid, so for them we report how many messages arrived
against how many were due, and how far each job's gaps stray from one second.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ours
from common import (
    Collector,
    Procs,
    RedisServer,
    message_headers,
    next_boundary,
    sleep_until_wall,
    slot_seconds,
    spread,
)
from jobsets import QUEUE, every
from peers.drivers import PEERS, Peer

WARM_UP_S = 3.0  # after the scheduler is ready, before the window we measure
DRAIN_S = 2.0  # after the window: the last slots' messages may still be landing


@dataclass(frozen=True)
class PrecisionPlan:
    small_n: int  # jobs every second, for lateness
    large_n: int  # jobs every second, for the time to enqueue a whole slot
    duration_s: int
    peers: bool


def run_ours(server: RedisServer, workdir: Path, n: int, duration_s: int) -> dict[str, Any]:
    server.flush()
    procs = Procs(workdir / "logs")
    config = ours.write_config(workdir / f"precision-{n}.toml", server.url, every(n, 1))
    try:
        node = ours.start_node(procs, config, "a", tag=f"precision{n}-")
        ready_at = ours.wait_leading(node, timeout_s=60)
        first = next_boundary(ready_at + WARM_UP_S, 1)
        last = first + duration_s - 1
        sleep_until_wall(first - 1.0)
        with Collector(server, QUEUE) as collector:
            cpu_before = node.cpu_s()
            sleep_until_wall(last + 1 + DRAIN_S)
            cpu_after = node.cpu_s()
    finally:
        procs.stop_all()
    counts: Counter[tuple[str, int]] = Counter()
    lateness: list[float] = []
    slot_done: dict[int, float] = defaultdict(float)
    for arrival in collector.arrivals():
        headers = message_headers(arrival.raw)
        slot = slot_seconds(headers["scheduler_slot"])
        if not first <= slot <= last:
            continue
        counts[(headers["scheduler_job"], slot)] += 1
        late = arrival.seen_s - slot
        lateness.append(late)
        slot_done[slot] = max(slot_done[slot], late)
    expected = n * duration_s
    whole_slots = [slot_done.get(slot, float("nan")) for slot in range(first, last + 1)]
    return {
        "n": n,
        "duration_s": duration_s,
        "expected": expected,
        "enqueued": sum(counts.values()),
        "missing": expected - len(counts),
        "repeated": sum(count - 1 for count in counts.values() if count > 1),
        "lateness": spread(lateness),
        "slot_enqueued": spread(whole_slots),
        "slots_within_0_1_s": sum(1 for d in whole_slots if d <= 0.1),
        "slots": duration_s,
        "cpu_s_per_min": round((cpu_after - cpu_before) / (duration_s + 1 + DRAIN_S) * 60, 2),
    }


def run_peer(
    peer: Peer, server: RedisServer, workdir: Path, n: int, duration_s: int
) -> dict[str, Any]:
    server.flush()
    procs = Procs(workdir / "logs")
    try:
        proc = peer.start(procs, server.url, every(n, 1), workdir, tag=f"-precision{n}")
        ready_at = peer.wait_ready(proc, timeout_s=120)
        first = next_boundary(ready_at + WARM_UP_S, 1)
        sleep_until_wall(first - 1.0)
        with Collector(server, QUEUE) as collector:
            cpu_before = proc.cpu_s()
            sleep_until_wall(first + duration_s)
            cpu_after = proc.cpu_s()
    finally:
        procs.stop_all()
    # Their messages name neither the entry nor a slot: count them, and time the passes
    # (one pass sends every due entry; a pass should start each second).
    seen = [a.seen_s for a in collector.arrivals() if first <= a.seen_s < first + duration_s]
    in_window = len(seen)
    expected = n * duration_s
    passes = _passes(seen)
    return {
        "n": n,
        "duration_s": duration_s,
        "expected": expected,
        "enqueued": in_window,
        "missing": max(0, expected - in_window),
        "pass_gap_from_1s": spread(abs(gap - 1.0) for gap in passes),
        "passes": len(passes) + 1 if seen else 0,
        "cpu_s_per_min": round((cpu_after - cpu_before) / duration_s * 60, 2),
    }


def _passes(times: list[float], quiet_s: float = 0.3) -> list[float]:
    """Gaps between the starts of successive bursts (a pass: arrivals closer than `quiet_s`)."""
    starts: list[float] = []
    previous = None
    for seen in sorted(times):
        if previous is None or seen - previous > quiet_s:
            starts.append(seen)
        previous = seen
    return [b - a for a, b in itertools.pairwise(starts)]


def run(server: RedisServer, workdir: Path, plan: PrecisionPlan) -> dict[str, Any]:
    results: dict[str, Any] = {"plan": plan.__dict__, "schedulers": {}}
    mine = {}
    for n in (plan.small_n, plan.large_n):
        mine[str(n)] = got = run_ours(server, workdir, n, plan.duration_s)
        print(
            f"  ours {n} every 1s: lateness p99 {got['lateness']['p99_s']} s, whole slot max "
            f"{got['slot_enqueued']['max_s']} s, missing {got['missing']}"
        )
    results["schedulers"][ours.NAME] = mine
    if plan.peers:
        for peer in PEERS:
            theirs = {}
            for n in (plan.small_n, plan.large_n):
                theirs[str(n)] = got = run_peer(peer, server, workdir, n, plan.duration_s)
                print(f"  {peer.name} {n} every 1s: {got['enqueued']}/{got['expected']} enqueued")
            results["schedulers"][peer.name] = theirs
    return results
