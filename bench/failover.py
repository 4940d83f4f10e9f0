"""3. Failover: the leader is killed (SIGKILL) or stopped (SIGTERM) while it sends 20 jobs
every second; how long nobody leads, and what happens to the slots of that gap.

Two nodes share one config. A watcher reads the lease key (``<namespace>:lease``) every
millisecond on its own connection: the gap is from just before the signal is sent until
the lease names the other node. The collector keeps every message, so afterwards each
(job, slot) of the whole run must be there exactly once, and the slots around each signal
show how late the gap made them. The killed node is started again before the next round.

celery beat has no standby to fail over to. RedBeat's standby polls its lock every
`beat_max_loop_interval` (300 s by default) and the lock lives 5 times that, so by default an
unplanned failover takes up to 25 minutes. We measure RedBeat tuned for failover instead:
`beat_max_loop_interval` = 1 s (so its lock lives 5 s), two beat processes with the same 20
entries every second, the watcher reading its lock key (`redbeat::lock`) the same way.
For both, the longest silence of the queue around each signal (the largest gap between
two messages landing) is what a user of the jobs sees.
"""

from __future__ import annotations

import itertools
import math
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ours
import redis
from common import (
    Arrival,
    Collector,
    Proc,
    Procs,
    RedisServer,
    message_headers,
    next_boundary,
    sleep_until_wall,
    slot_seconds,
    spread,
    wait_until,
)
from jobsets import QUEUE, every
from peers.drivers import REDBEAT

JOBS = 20
REDBEAT_LOCK_KEY = "redbeat::lock"  # its default: key prefix "redbeat:" + ":lock"
REDBEAT_MAX_INTERVAL_S = 1
REDBEAT_TIMEOUT_S = 30.0  # its lock lives 5 s; a standby looks once a second
SIGNAL_AFTER_SLOT_S = (0.3, 0.6, 0.9)  # where in the second the signal lands, round robin
STEADY_S = 3.0  # between a takeover and the next signal


@dataclass(frozen=True)
class FailoverPlan:
    rounds: int  # per kind of signal


class LeaseWatch:
    """Reads the lease holder every millisecond and keeps each change, with its time."""

    def __init__(
        self, server: RedisServer, read: Callable[[redis.Redis], str | None] = ours.lease_holder
    ) -> None:
        self.client = server.connect()
        self.read = read
        self.changes: list[tuple[float, str | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-watch", daemon=True)

    def __enter__(self) -> LeaseWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        last: object = object()
        while not self._stop.is_set():
            before = time.time()
            holder = self.read(self.client)
            if holder != last:
                self.changes.append(((before + time.time()) / 2, holder))
                last = holder
            time.sleep(0.001)

    def holder(self) -> str | None:
        return self.changes[-1][1] if self.changes else None

    def taken_by_other(self, than: str, since_s: float, timeout_s: float) -> float | None:
        """When (after `since_s`) the lease first named a node other than `than`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for seen, holder in reversed(self.changes):
                if seen < since_s:
                    break
                if holder not in (None, than):
                    return min(s for s, h in self.changes if s >= since_s and h not in (None, than))
            time.sleep(0.005)
        return None


def run(server: RedisServer, workdir: Path, plan: FailoverPlan) -> dict[str, Any]:
    results = {ours.NAME: run_ours(server, workdir, plan)}
    results[REDBEAT.name] = run_redbeat(server, workdir, plan)
    return {"schedulers": results}


def run_ours(server: RedisServer, workdir: Path, plan: FailoverPlan) -> dict[str, Any]:
    server.flush()
    procs = Procs(workdir / "logs")
    config = ours.write_config(workdir / "failover.toml", server.url, every(JOBS, 1))
    nodes = {"a": ours.start_node(procs, config, "a", tag="failover-")}
    rounds: list[dict[str, Any]] = []
    try:
        ours.wait_leading(nodes["a"], timeout_s=60)
        nodes["b"] = ours.start_node(procs, config, "b", tag="failover-")
        ours.wait_standing_by(server, nodes["b"], "b", timeout_s=60)
        with LeaseWatch(server) as watch, Collector(server, QUEUE) as collector:
            first_slot = next_boundary(time.time() + 1.0, 1)
            kinds = [signal.SIGKILL, signal.SIGTERM] * plan.rounds
            for index, signum in enumerate(kinds):
                rounds.append(_one_round(server, procs, config, nodes, watch, signum, index))
                print(f"  {signal.Signals(signum).name}: {rounds[-1]['gap_s']} s without a leader")
            time.sleep(STEADY_S)  # the slots right after the last signal count too
            last_slot = int(time.time()) - 1
            time.sleep(1.0)
    finally:
        procs.stop_all()
    arrivals = collector.arrivals()
    counts: Counter[tuple[str, int]] = Counter()
    seen_at: dict[tuple[str, int], float] = {}
    for arrival in arrivals:
        headers = message_headers(arrival.raw)
        key = (headers["scheduler_job"], slot_seconds(headers["scheduler_slot"]))
        counts[key] += 1
        seen_at.setdefault(key, arrival.seen_s)
    window = range(first_slot, last_slot + 1)
    expected = {(job, slot) for job in (f"e{i:02d}" for i in range(JOBS)) for slot in window}
    for item in rounds:
        around = [
            seen_at[key] - key[1]
            for key in expected
            if key in seen_at and item["signal_at"] - 1 <= key[1] <= item["signal_at"] + 3
        ]
        item["slot_lateness_around"] = spread(around)
    summary = _summary(rounds, arrivals)
    summary.update(plan=plan.__dict__, jobs=JOBS, lease_ttl=ours.LEASE_TTL)
    for name in ("SIGKILL", "SIGTERM"):
        summary[name]["worst_slot_lateness_s"] = max(
            (r["slot_lateness_around"]["max_s"] or 0.0 for r in rounds if r["signal"] == name),
            default=None,
        )
    summary["slots_expected"] = len(expected)
    summary["slots_missing"] = len(expected - counts.keys())
    summary["slots_repeated"] = sum(n - 1 for key, n in counts.items() if n > 1)
    return summary


def _summary(rounds: list[dict[str, Any]], arrivals: list[Arrival]) -> dict[str, Any]:
    """Per kind of signal: the gaps without a leader and the queue's longest silences."""
    times = sorted(a.seen_s for a in arrivals)
    for item in rounds:
        end = item["signal_at"] + (item["gap_s"] or 0.0) + 3.0
        near = [t for t in times if item["signal_at"] - 2.0 <= t <= end]
        item["longest_silence_s"] = round(
            max((b - a for a, b in itertools.pairwise(near)), default=math.nan), 4
        )
    summary: dict[str, Any] = {}
    for name in ("SIGKILL", "SIGTERM"):
        mine = [r for r in rounds if r["signal"] == name]
        summary[name] = {
            "rounds": len(mine),
            "gap": spread(r["gap_s"] for r in mine if r["gap_s"] is not None),
            "failed_rounds": sum(1 for r in mine if r["gap_s"] is None),
            "longest_silence": spread(r["longest_silence_s"] for r in mine),
        }
    summary["rounds"] = [{k: v for k, v in r.items() if k != "signal_at"} for r in rounds]
    return summary


def redbeat_lock(client: redis.Redis) -> str | None:
    """The token in RedBeat's lock (redis-py's Lock): who holds it, not which process."""
    value = client.get(REDBEAT_LOCK_KEY)
    return None if value is None else value.decode(errors="replace")


def run_redbeat(server: RedisServer, workdir: Path, plan: FailoverPlan) -> dict[str, Any]:
    server.flush()
    procs = Procs(workdir / "logs")
    jobs = every(JOBS, 1)
    env = {"BENCH_MAX_INTERVAL_S": str(REDBEAT_MAX_INTERVAL_S)}
    beats: dict[str, Proc] = {}
    rounds: list[dict[str, Any]] = []
    try:
        beats["a"] = REDBEAT.start(procs, server.url, jobs, workdir, tag="-fo-a", env=env)
        REDBEAT.wait_ready(beats["a"], timeout_s=60)  # a holds the lock, b stands by
        beats["b"] = REDBEAT.start(procs, server.url, jobs, workdir, tag="-fo-b", env=env)
        _wait_line(beats["b"], "bench: beat ready")
        with LeaseWatch(server, redbeat_lock) as watch, Collector(server, QUEUE) as collector:
            kinds = [signal.SIGKILL, signal.SIGTERM] * plan.rounds
            for index, signum in enumerate(kinds):
                holders = [n for n, p in beats.items() if REDBEAT.ready_line in p.log_text()]
                if len(holders) != 1:
                    raise RuntimeError(f"RedBeat: not one lock holder before round {index}")
                leader = holders[0]
                token = wait_until(watch.holder, timeout_s=10, what="RedBeat's lock")
                sleep_until_wall(next_boundary(time.time() + STEADY_S, 1) + 0.3)
                sent_at = time.time()
                beats[leader].signal(signum)
                taken_at = watch.taken_by_other(token, sent_at, timeout_s=REDBEAT_TIMEOUT_S)
                beats[leader].popen.wait(timeout=15)
                rounds.append(
                    {
                        "signal": signal.Signals(signum).name,
                        "signal_at": sent_at,
                        "from": leader,
                        "gap_s": None if taken_at is None else round(taken_at - sent_at, 4),
                    }
                )
                print(f"  RedBeat {rounds[-1]['signal']}: {rounds[-1]['gap_s']} s without a lock")
                beats[leader] = REDBEAT.start(
                    procs, server.url, jobs, workdir, tag=f"-fo-{leader}{index}", env=env
                )
                _wait_line(beats[leader], "bench: beat ready")
            time.sleep(STEADY_S)
    finally:
        procs.stop_all()
    summary = _summary(rounds, collector.arrivals())
    summary.update(
        plan=plan.__dict__,
        jobs=JOBS,
        settings=f"beat_max_loop_interval {REDBEAT_MAX_INTERVAL_S} s, lock timeout 5 x that",
    )
    return summary


def _wait_line(proc: Proc, line: str) -> None:
    def logged() -> bool:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        return line in proc.log_text()

    wait_until(logged, timeout_s=60, what=f"{proc.name}: {line}", interval_s=0.05)


def _one_round(
    server: RedisServer,
    procs: Procs,
    config: Path,
    nodes: dict[str, Any],
    watch: LeaseWatch,
    signum: int,
    index: int,
) -> dict[str, Any]:
    leader = wait_until(watch.holder, timeout_s=10, what="a leader", interval_s=0.01)
    if leader not in nodes:
        raise RuntimeError(f"no known leader before round {index}: {leader!r}")
    when = next_boundary(time.time() + STEADY_S, 1) + SIGNAL_AFTER_SLOT_S[index % 3]
    sleep_until_wall(when)
    sent_at = time.time()
    nodes[leader].signal(signum)
    taken_at = watch.taken_by_other(leader, sent_at, timeout_s=30)
    nodes[leader].popen.wait(timeout=15)
    # the node comes back as a standby, as systemd's Restart= would bring it
    nodes[leader] = ours.start_node(procs, config, leader, tag=f"failover{index}-")
    ours.wait_standing_by(server, nodes[leader], leader, timeout_s=60)
    return {
        "signal": signal.Signals(signum).name,
        "signal_at": sent_at,
        "from": leader,
        "gap_s": None if taken_at is None else round(taken_at - sent_at, 4),
    }
