"""A stock Celery worker consumes one burst of ours: proof that the messages are accepted.

The worker is Celery from the package registry (the peers' venv), with an app that knows
nothing of this project: `bench.noop` counts each run in Redis. Our scheduler sends N jobs
due at one instant to the queue the worker consumes; every one must run, each with its own
task id, and the worker must log no error.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import ours
from common import Procs, RedisServer, clean_env, next_boundary, wait_until
from jobsets import Job, at_instant
from peers.drivers import PEERS_DIR, PYTHON

QUEUE = "work"
DONE_KEY = "bench:done"  # peers/beatapp.py counts here
TROUBLE = ("ERROR", "CRITICAL", "unregistered", "Traceback", "rejected")


def run(server: RedisServer, workdir: Path, n: int) -> dict[str, Any]:
    server.flush()
    procs = Procs(workdir / "logs")
    env = clean_env(BENCH_BROKER_URL=server.url, PYTHONPATH=str(PEERS_DIR))
    try:
        worker = procs.start(
            "worker",
            [
                str(PYTHON), "-m", "celery", "-A", "beatapp", "worker",
                "-Q", QUEUE, "--concurrency=2", "--without-mingle", "--without-gossip",
                "--loglevel=INFO",
            ],
            env,
            cwd=PEERS_DIR,
        )  # fmt: skip
        wait_until(
            lambda: " ready." in worker.log_text() or None,
            timeout_s=60,
            what="the Celery worker to be ready",
            interval_s=0.1,
        )
        instant = next_boundary(time.time() + 6, 1)
        jobs = [Job(j.name, cron=j.cron, queue=QUEUE) for j in at_instant(n, instant, seconds=True)]
        config = ours.write_config(workdir / "worker.toml", server.url, jobs)
        node = ours.start_node(procs, config, "a", tag="worker-")
        ours.wait_leading(node, timeout_s=instant - time.time())

        def done() -> int:
            return int(server.client.get(DONE_KEY) or 0)

        with contextlib.suppress(TimeoutError):  # what did not run shows in the counts
            wait_until(lambda: done() >= n, timeout_s=120, what=f"{n} tasks run", interval_s=0.2)
        ran_by = time.time() - instant
        log = worker.log_text()
    finally:
        procs.stop_all()
    distinct = int(server.client.scard(f"{DONE_KEY}:ids"))
    trouble = [line for line in log.splitlines() if any(word in line for word in TROUBLE)]
    return {
        "n": n,
        "ran": done(),
        "distinct_task_ids": distinct,
        "all_ran_within_s": round(ran_by, 2),
        "worker_errors": trouble[:5],
        "ok": done() == n and distinct == n and not trouble,
    }
