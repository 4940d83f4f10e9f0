"""The dead man's switch, decided: when a job with `alert_after` gets an alert, and when it goes.

Pure: the shell (scheduler/alerting.py) reads the facts from Redis, asks `decide` with its
clock's time, and writes what comes out. A job gets an alert when

- an enqueued slot never started: its newest fired slot is `alert_after` old and no worker
  reported it started (the newest outcome is for an older slot, absent, or only "received");
- or no run succeeded for `alert_after`: counted from the newest success the workers reported,
  or, for a job without one, from when this leader first saw it (a fresh deployment, or a new
  job, gets `alert_after` of grace instead of an alert at once).

A paused job gets no new alert, and its silence counts again from when it was last seen paused.
An alert stays open (nothing new is raised for it) until a run succeeds after it opened
("resolved"), or until its job no longer has `alert_after` ("cleared").
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

NOT_STARTED = "not_started"
NO_SUCCESS = "no_success"
RESOLVED = "resolved"
CLEARED = "cleared"
RAISED = (NOT_STARTED, NO_SUCCESS)
# Worker events that say a run began (or ended): "received" alone does not.
_STARTED = frozenset({"started", "succeeded", "failed", "retried"})
# A time past this cannot be shown (year 9999) and is not one we wrote.
_LATEST_S = 253_402_300_799


@dataclass(frozen=True, slots=True)
class JobFacts:
    """What Redis says of one job; None where it says nothing (or nothing readable)."""

    last_success_s: float | None = None
    last_fire_s: int | None = None  # the newest slot fired
    outcome_slot_s: int | None = None  # the slot of the newest event a worker reported
    outcome: str | None = None  # that event
    paused: bool = False


@dataclass(frozen=True, slots=True)
class OpenAlert:
    since_s: float
    reason: str


@dataclass(frozen=True, slots=True)
class Raise:
    """Open an alert now: why, since when, and the job's newest fired slot (if any)."""

    reason: str
    since_s: float
    slot_s: int | None


@dataclass(frozen=True, slots=True)
class Close:
    reason: str  # RESOLVED or CLEARED


def decide(
    alert_after_s: float | None,
    facts: JobFacts,
    open_alert: OpenAlert | None,
    *,
    first_seen_s: float,
    paused_seen_s: float | None,
    now_s: float,
) -> Raise | Close | None:
    """What to do about one job now. `first_seen_s`: when this leader first saw the job;
    `paused_seen_s`: when it last saw it paused (None: not since it leads)."""
    if open_alert is not None:
        if alert_after_s is None:
            return Close(CLEARED)
        success = facts.last_success_s
        return Close(RESOLVED) if success is not None and success > open_alert.since_s else None
    if alert_after_s is None or facts.paused:
        return None
    quiet_from_s = -math.inf if paused_seen_s is None else paused_seen_s
    fired_s = facts.last_fire_s
    if (
        fired_s is not None
        and not _started(facts, fired_s)
        and now_s - max(fired_s, quiet_from_s) >= alert_after_s
    ):
        return Raise(NOT_STARTED, now_s, fired_s)
    success_s = facts.last_success_s if facts.last_success_s is not None else first_seen_s
    if now_s - max(success_s, quiet_from_s) >= alert_after_s:
        return Raise(NO_SUCCESS, now_s, fired_s)
    return None


def _started(facts: JobFacts, fired_s: int) -> bool:
    """Whether a worker reported the run of slot `fired_s` (or of a later one) as begun."""
    slot_s = facts.outcome_slot_s
    if slot_s is None or slot_s < fired_s:
        return False
    return slot_s > fired_s or facts.outcome in _STARTED


# -- the values in Redis, read without trusting them ----------------------------------------


def alert_value(since_s: float, reason: str) -> str:
    """An open alert as `Keys.alerts` holds it."""
    return json.dumps({"since": round(since_s, 3), "reason": reason})


def parse_alert(raw: bytes) -> OpenAlert | None:
    """An alert record, or None when it is not one this package wrote."""
    record = _json(raw)
    if not isinstance(record, dict):
        return None
    since, reason = record.get("since"), record.get("reason")
    if not (isinstance(since, int | float) and _is_time(since)):
        return None
    if not (isinstance(reason, str) and reason):
        return None
    return OpenAlert(float(since), reason)


def parse_epoch(raw: bytes | None) -> float | None:
    """Epoch seconds written as text (`Keys.last_success`), or None."""
    if raw is None or len(raw) > 32:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if _is_time(value) else None


def parse_last_fire(raw: bytes | None) -> int | None:
    """The slot of "<slot> <token>" (`Keys.last_fire`), or None."""
    if raw is None:
        return None
    slot = raw.split(b" ", 1)[0]
    if not (0 < len(slot) <= 15 and slot.isdigit()):
        return None
    return int(slot)


def parse_outcome(raw: bytes | None) -> tuple[int | None, str | None]:
    """(slot, event) of an outcome record (`Keys.outcomes`); (None, None) if unreadable."""
    record = _json(raw) if raw is not None else None
    if not isinstance(record, dict):
        return None, None
    slot, outcome = record.get("slot"), record.get("outcome")
    if not (isinstance(slot, str) and isinstance(outcome, str)):
        return None, None
    try:
        instant = datetime.fromisoformat(slot[:40])
    except ValueError:
        return None, None
    if instant.tzinfo is None:
        return None, None
    return math.floor(instant.timestamp()), outcome


def notification(
    job: str, reason: str, since_s: float, last_success_s: float | None
) -> dict[str, Any]:
    """What the alert task gets as kwargs (the webhook adds the namespace)."""
    last = None if last_success_s is None else round(last_success_s, 3)
    return {"job": job, "reason": reason, "since": round(since_s, 3), "last_success": last}


def _json(raw: bytes) -> Any:
    if len(raw) > 64 * 1024:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _is_time(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value <= _LATEST_S
    )
