"""What reporting costs a worker per run: the Redis writes of one successful run as the hooks
make them now (received, started, succeeded: one script each, into the job's capped stream
with its outcome and last success) beside what they made before (started and succeeded: one
HSET of the outcome each), alternated in one run against one private redis-server.

    .venv/bin/python bench/worker_reports.py [--runs N] [--rounds R]

Times the client side of every write, which is what a task's worker waits for.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import Procs, RedisServer

from scheduler.store.keys import Keys
from scheduler.store.outcomes import record_outcome
from scheduler.store.reports import ReportWriter

NAMESPACE = "bench"
SLOT = "2026-12-01T09:00:00Z"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=2000, help="runs reported per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    procs = Procs(Path(tempfile.mkdtemp(prefix="reports-bench-")))
    try:
        server = RedisServer(procs, procs.log_dir / "redis")
        client = server.client
        writer = ReportWriter(client, Keys(NAMESPACE))

        def now() -> None:
            for run in range(args.runs):
                job, ident = f"job{run % 100}", f"task-{run}"
                writer.add(job, "received", SLOT, ident, worker="celery@bench")
                writer.add(job, "started", SLOT, ident, worker="celery@bench")
                writer.add(job, "succeeded", SLOT, ident, worker="celery@bench", duration_s=0.01)

        def before() -> None:
            for run in range(args.runs):
                job, ident = f"job{run % 100}", f"task-{run}"
                record_outcome(client, NAMESPACE, job, SLOT, ident, "started")
                record_outcome(client, NAMESPACE, job, SLOT, ident, "succeeded")

        cases = {"reports (now)": now, "outcome only (before)": before}
        times: dict[str, list[float]] = {name: [] for name in cases}
        for round_ in range(args.rounds):
            names = list(cases)
            for name in names[round_ % 2 :] + names[: round_ % 2]:  # each goes first in turn
                client.flushall()
                started = time.perf_counter()
                cases[name]()
                times[name].append((time.perf_counter() - started) / args.runs)
        print(f"reporting one successful run, {args.runs} runs a round, {args.rounds} rounds")
        for name, seconds in times.items():
            print(f"  {name:>22}: median {statistics.median(seconds) * 1e6:6.0f} us a run")
        ratio = statistics.median(times["reports (now)"]) / statistics.median(
            times["outcome only (before)"]
        )
        print(f"  ratio now / before: {ratio:.2f}")
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
