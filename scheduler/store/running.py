"""Which jobs have a run in progress, as the worker hooks report it: what `overlap = "skip"`
and `trigger` ask before sending another slot of the same job.

A run counts as in progress while its run-once claim (`Keys.run_claim`) says "started": the
worker renews that claim while the task body runs, so a worker that vanished stops counting
within the claim's TTL (a minute by default) instead of blocking the job for good. A delivery
reported "received" but not yet claimed counts for `RECEIVED_GRACE_S`. Only tasks run through
the worker hook (`jobs.hooks.install`) are seen.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import redis

from scheduler.store.failures import redis_errors
from scheduler.store.keys import Keys
from scheduler.store.state import MAX_VALUE_BYTES

# A prefork worker reports "received" before a child process takes the task and claims it.
RECEIVED_GRACE_S = 60.0
_CHUNK = 1000


def running_jobs(
    client: redis.Redis, keys: Keys, jobs: Sequence[str], now_s: float
) -> dict[str, str]:
    """Of `jobs`, those with a run in progress, each with the task id of that run.

    Raises StoreUnavailable (Redis cannot serve) like every store call; an outcome record or
    claim this package did not write reads as "not running": a wrong value never blocks a job.
    """
    newest: dict[str, tuple[str, str, float]] = {}
    with redis_errors("reading which jobs are running"):
        for start in range(0, len(jobs), _CHUNK):
            names = list(jobs[start : start + _CHUNK])
            values: list[bytes | None] = client.hmget(keys.outcomes, names)  # type: ignore[assignment]
            for name, raw in zip(names, values, strict=True):
                found = _outcome(raw)
                if found is not None and found[1] in ("received", "started"):
                    newest[name] = found
        if not newest:
            return {}
        pipe = client.pipeline(transaction=False)
        for task_id, _, _ in newest.values():
            pipe.get(keys.run_claim(task_id))
        claims: list[bytes | None] = pipe.execute()
    running = {}
    for (job, (task_id, outcome, at_s)), claim in zip(newest.items(), claims, strict=True):
        if claim is not None:
            if claim.startswith(b"started "):
                running[job] = task_id
        elif outcome == "received" and now_s - at_s < RECEIVED_GRACE_S:
            running[job] = task_id
    return running


def _outcome(raw: bytes | None) -> tuple[str, str, float] | None:
    """(task id, outcome, at) of an outcome record, or None when it is not one of ours."""
    if raw is None or len(raw) > MAX_VALUE_BYTES:
        return None
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict):
        return None
    task_id, outcome, at_s = record.get("task_id"), record.get("outcome"), record.get("at")
    if not (isinstance(task_id, str) and isinstance(outcome, str)):
        return None
    if not isinstance(at_s, int | float) or isinstance(at_s, bool):
        at_s = 0.0
    return task_id, outcome, float(at_s)
