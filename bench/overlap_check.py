"""The cost of the overlap policy on the hot path: `Dispatcher.send` of one burst of 10,000
jobs due at once, three ways alternated in one run against one private redis-server, so the
ratios hold on a noisy machine:

- "allow": every job allows overlap (the default), as shipped: one scan of the due list;
- "no check": the same, with the overlap check switched off (the code path before it existed);
- "skip": every job has `overlap = "skip"` and none is running: one batched read of what the
  workers reported, then the same claims.

    .venv/bin/python bench/overlap_check.py [--rounds N]

Times the whole send, messages built and claimed (same-Redis broker: claim and enqueue in one
script), which is what a burst waits for.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from common import Procs, RedisServer

from scheduler.clock import SystemClock
from scheduler.dispatch import Dispatcher
from scheduler.engine import Due
from scheduler.jobspec import JobSpec, build_job
from scheduler.lease import Lease
from scheduler.messages import MessageFactory
from scheduler.store.claims import Claims
from scheduler.store.keys import Keys

JOBS = 10_000
NAMESPACE = "bench"


def jobs(overlap: str) -> list[JobSpec]:
    problems: list[str] = []
    table = {"task": "jobs.examples.ping", "every": "1s", "queue": "q", "overlap": overlap}
    first = build_job(Path("bench.toml"), f"{overlap}0", table, ZoneInfo("UTC"), problems)
    assert first is not None, problems
    return [first.renamed(f"{overlap}{index}") for index in range(JOBS)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    procs = Procs(Path(tempfile.mkdtemp(prefix="overlap-bench-")))
    try:
        server = RedisServer(procs, procs.log_dir / "redis")
        client, keys, clock = server.client, Keys(NAMESPACE), SystemClock()
        lease = Lease(client, keys, "bench", timedelta(hours=1), clock)
        assert lease.try_acquire()
        assert lease.value is not None
        assert lease.token is not None
        factory = MessageFactory(NAMESPACE, server.url, {}, state_url=server.url)
        claims = Claims(client, keys, 1, clock)
        checked = Dispatcher(claims, factory, atomic=True, outbox_cap=0)
        unchecked = Dispatcher(claims, factory, atomic=True, outbox_cap=0)
        unchecked.running = None  # as before the overlap policy
        cases = {
            "allow": (checked, jobs("allow")),
            "no check": (unchecked, jobs("allow")),
            "skip": (checked, jobs("skip")),
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        slot_s = int(clock.time()) - 3600  # in the past: every slot is due
        order = list(cases)
        for round_ in range(args.rounds):
            # Each case goes first in turn: whatever the first send of a round pays is shared.
            for name in order[round_ % 3 :] + order[: round_ % 3]:
                dispatcher, specs = cases[name]
                slot_s += 1
                client.delete("q")
                due = Due(fires=[(job, slot_s) for job in specs])
                started = time.perf_counter()
                sent = dispatcher.send(lease.value, lease.token, due)
                times[name].append(time.perf_counter() - started)
                assert client.llen("q") == JOBS, name
                assert not sent.skipped_overlap, name
                assert lease.renew()
        print(f"Dispatcher.send of {JOBS} due jobs, {args.rounds} rounds alternated")
        for name, seconds in times.items():
            print(f"  {name:>8}: median {statistics.median(seconds) * 1000:7.1f} ms, "
                  f"min {min(seconds) * 1000:7.1f} ms")  # fmt: skip
        median = {name: statistics.median(seconds) for name, seconds in times.items()}
        print(f"  ratio allow / no check: {median['allow'] / median['no check']:.3f}")
        print(f"  ratio skip / allow:     {median['skip'] / median['allow']:.3f}")
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
