"""4 and 5. Idle cost, and how it grows with the number of jobs.

N jobs, none due for weeks (each a fixed minute of a day in a month at least two months
away), with 1,000 distinct expressions or all distinct. For each scheduler and N:

- start-up: from the spawn of the process (interpreter, config load and validation
  included) until it is ready to fire: ours logs that it leads (engine built), celery beat
  fires `beat_init`, RedBeat holds its lock (after writing every entry to Redis);
- then, after a short settling time, a window in which we take its CPU time (/proc stat),
  Redis commands (`INFO stats` total_commands_processed, less our own INFO calls, and the
  busiest commands from `INFO commandstats`), and at the end its peak and current RSS
  (/proc status VmHWM, VmRSS) and what Redis holds (`used_memory` above the empty server).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ours
from common import OWN_COMMANDS, Procs, RedisServer
from jobsets import never_due
from peers.drivers import PEERS, Peer

SETTLE_S = 5.0


@dataclass(frozen=True)
class IdlePlan:
    ours_cases: tuple[tuple[int, int], ...]  # (jobs, distinct expressions)
    peers_cases: tuple[tuple[int, int], ...]
    window_s: float
    start_timeout_s: float


def _measure(server: RedisServer, proc: Any, window_s: float) -> dict[str, Any]:
    time.sleep(SETTLE_S)
    stats_before = server.commandstats()
    total_before = server.commands_processed()
    cpu_before = proc.cpu_s()
    started = time.monotonic()
    time.sleep(window_s)
    cpu_after = proc.cpu_s()
    total_after = server.commands_processed()
    elapsed = time.monotonic() - started
    stats_after = server.commandstats()
    memory = proc.memory_kb()
    # An INFO does not count itself; the first total's INFO is counted in the second.
    commands = total_after - total_before - 1
    busiest = sorted(
        ((name, calls - stats_before.get(name, 0)) for name, calls in stats_after.items()),
        key=lambda item: -item[1],
    )
    return {
        "cpu_s_per_min": round((cpu_after - cpu_before) / elapsed * 60, 3),
        "redis_commands_per_s": round(commands / elapsed, 2),
        "redis_busiest": {
            name: round(calls / elapsed, 2)
            for name, calls in busiest[:6]
            if calls > 0 and name not in OWN_COMMANDS
        },
        "rss_peak_mib": round(memory["VmHWM"] / 1024, 1),
        "rss_mib": round(memory["VmRSS"] / 1024, 1),
        "redis_used_mib": round(int(server.client.info("memory")["used_memory"]) / 2**20, 2),
        "window_s": round(elapsed, 1),
    }


def run_ours(
    server: RedisServer, workdir: Path, n: int, distinct: int, plan: IdlePlan
) -> dict[str, Any]:
    server.flush()
    procs = Procs(workdir / "logs")
    jobs = never_due(n, distinct, time.time())
    config = ours.write_config(workdir / f"idle-{n}-{distinct}.toml", server.url, jobs)
    try:
        node = ours.start_node(procs, config, "a", tag=f"idle{n}-{distinct}-")
        try:
            ready_at = ours.wait_leading(node, timeout_s=plan.start_timeout_s)
        except TimeoutError:
            return {"n": n, "distinct": distinct, "error": "not ready in time"}
        result = {"n": n, "distinct": distinct, "startup_s": round(ready_at - node.started_at, 3)}
        result.update(_measure(server, node, plan.window_s))
    finally:
        procs.stop_all()
    return result


def run_peer(
    peer: Peer, server: RedisServer, workdir: Path, n: int, distinct: int, plan: IdlePlan
) -> dict[str, Any]:
    server.flush()
    procs = Procs(workdir / "logs")
    jobs = never_due(n, distinct, time.time())
    try:
        proc = peer.start(procs, server.url, jobs, workdir, tag=f"-idle{n}-{distinct}")
        try:
            ready_at = peer.wait_ready(proc, timeout_s=plan.start_timeout_s)
        except TimeoutError:
            return {
                "n": n,
                "distinct": distinct,
                "error": f"not ready within {plan.start_timeout_s:.0f} s",
            }
        result = {"n": n, "distinct": distinct, "startup_s": round(ready_at - proc.started_at, 3)}
        result.update(_measure(server, proc, plan.window_s))
    finally:
        procs.stop_all()
    return result


def _show(name: str, got: dict[str, Any]) -> None:
    if "error" in got:
        print(f"  {name} N={got['n']} ({got['distinct']} distinct): {got['error']}")
        return
    print(
        f"  {name} N={got['n']} ({got['distinct']} distinct): start {got['startup_s']} s, "
        f"CPU {got['cpu_s_per_min']} s/min, RSS peak {got['rss_peak_mib']} MiB, "
        f"Redis {got['redis_commands_per_s']} cmd/s"
    )


def run(server: RedisServer, workdir: Path, plan: IdlePlan) -> dict[str, Any]:
    results: dict[str, Any] = {"plan": plan.__dict__, "schedulers": {}}
    mine = []
    for n, distinct in plan.ours_cases:
        mine.append(run_ours(server, workdir, n, distinct, plan))
        _show(ours.NAME, mine[-1])
    results["schedulers"][ours.NAME] = mine
    for peer in PEERS:
        theirs = []
        for n, distinct in plan.peers_cases:
            theirs.append(run_peer(peer, server, workdir, n, distinct, plan))
            _show(peer.name, theirs[-1])
        results["schedulers"][peer.name] = theirs
    return results
