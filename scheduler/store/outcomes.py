"""What workers report about each execution, for `jobs list` (the last run and its outcome)."""

from __future__ import annotations

import json
from typing import Any

import redis

from scheduler.clock import Clock, SystemClock
from scheduler.store.failures import redis_errors
from scheduler.store.keys import Keys
from scheduler.store.state import StateStore

# The events a worker reports (scheduler/store/reports.py writes them); the newest is kept.
OUTCOMES = ("received", "started", "succeeded", "failed", "retried")

_SYSTEM_CLOCK = SystemClock()


@redis_errors("recording an outcome")
def record_outcome(
    client: redis.Redis,
    namespace: str,
    job: str,
    slot: str,
    task_id: str,
    outcome: str,
    detail: str | None = None,
    *,
    clock: Clock = _SYSTEM_CLOCK,
) -> None:
    """Store the newest outcome of `job`; `detail` is trimmed so a huge error stays small.

    `clock` stamps the record's ``at``; tests pass their own.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    record = {
        "slot": slot,
        "task_id": task_id,
        "outcome": outcome,
        "detail": None if detail is None else detail[:500],
        "at": round(clock.time(), 3),
    }
    client.hset(Keys(namespace).outcomes, job, json.dumps(record))


def read_outcomes(client: redis.Redis, namespace: str) -> dict[str, dict[str, Any]]:
    """Outcome records by job; a garbled record reads as an "unreadable" outcome, not a crash.
    What could not be read is reported by StateStore.read_outcomes, which `jobs list` uses."""
    return StateStore(client, Keys(namespace)).read_outcomes().value
