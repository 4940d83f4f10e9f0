"""The rows of `jobs list`: one per job, what runs when, what ran and how it went.

Pure: the facts are read from Redis by the command, the time is given. Rows are sorted by the
next run, as systemd's `list-timers` sorts its timers, so what happens next is on top.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.clock import utc
from scheduler.describe import left_words, passed_words, schedule_words
from scheduler.jobspec import JobSpec
from scheduler.store.state import Unreadable
from scheduler.triggers import CronTrigger
from scheduler.triggers.bounded import BoundedTrigger, unbounded
from scheduler.views import next_slots
from scheduler.wire import slot_text

# What the worker reported last, as `jobs list` says it.
_OUTCOME_WORDS = {
    "received": "running",
    "started": "running",
    "retried": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "unreadable": "unreadable",
}


@dataclass(frozen=True)
class JobFacts:
    """What Redis says about the jobs, as read by the command (tolerant readers)."""

    last_fires: Mapping[str, int] = field(default_factory=dict)
    outcomes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    paused: set[str] = field(default_factory=set)
    quarantined: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    alerts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # job -> the last slot of its newest missed (or skipped) range
    last_missed: Mapping[str, int] = field(default_factory=dict)
    unreadable: Sequence[Unreadable] = ()


def written_schedule(job: JobSpec) -> str:
    """The schedule as written, with what `H` resolved to when it differs."""
    trigger = unbounded(job.trigger)
    if isinstance(trigger, CronTrigger) and trigger.expression.text != job.schedule:
        return f"{job.schedule} = {trigger.expression.text}"
    return job.schedule


def timing_note(job: JobSpec, has_next: bool) -> str | None:
    """Why a job fires no more although its schedule would: "disabled" (enabled = false),
    "ended" (past its end) or "ended (N runs)" (its max_runs slots are past); else None."""
    if not job.enabled:
        return "disabled"
    trigger = job.trigger
    if has_next or not isinstance(trigger, BoundedTrigger) or not trigger.ends():
        return None
    if trigger.stopped_by_runs():
        runs = trigger.max_runs
        return f"ended ({runs} run{'' if runs == 1 else 's'})"
    return "ended"


def job_rows(
    jobs: Mapping[str, tuple[JobSpec, str]], now_s: float, facts: JobFacts
) -> list[dict[str, Any]]:
    """One row per job (job, source "config" or "runtime"), soonest next run first; a whole
    key's unreadable value lands on every row, a field's on that job's row."""
    rows = []
    for name, (job, source) in jobs.items():
        upcoming = next_slots(job, utc(now_s), 1) if job.enabled else []
        next_at = upcoming[0] if upcoming else None
        last = facts.last_fires.get(name)
        quarantine = facts.quarantined.get(name)
        alert = facts.alerts.get(name)
        rows.append(
            {
                "name": name,
                "task": job.task,
                "schedule": f"{job.kind} {job.schedule}",
                "description": schedule_words(job),
                "expression": written_schedule(job),
                "timezone": job.timezone.key,
                "next_run": next_at.isoformat() if next_at else None,
                "next_in_s": None if next_at is None else round(next_at.timestamp() - now_s),
                "last_run": None if last is None else slot_text(last),
                "last_ago_s": None if last is None else round(now_s - last),
                "outcome": _outcome(name, last, facts),
                "paused": name in facts.paused,
                "enabled": job.enabled,
                "note": timing_note(job, next_at is not None),
                "quarantined": None
                if quarantine is None
                else f"key {quarantine.get('key')} holds {quarantine.get('found')}",
                "alert": None if alert is None else alert.get("reason", "alert"),
                "source": source,
                "queue": job.queue,
                "unreadable": [u for u in facts.unreadable if u.field in (None, name)],
            }
        )
    rows.sort(key=lambda row: (row["next_in_s"] is None, row["next_in_s"] or 0, row["name"]))
    return rows


def _outcome(name: str, last: int | None, facts: JobFacts) -> str | None:
    """succeeded / failed / running from the worker; missed when a missed range is newer than
    the last fire; unknown when it fired and no worker reported; None when it never fired."""
    missed = facts.last_missed.get(name)
    if missed is not None and (last is None or missed > last):
        return "missed"
    reported = facts.outcomes.get(name, {}).get("outcome")
    if isinstance(reported, str):
        return _OUTCOME_WORDS.get(reported, reported)
    return None if last is None else "unknown"


def human_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row's cells for the table: times in words beside the instants."""
    return {
        **row,
        "schedule": f"{row['description']} ({row['expression']})",
        "tz": row["timezone"],
        "next": _local(row["next_run"], row["timezone"]),
        # No next run: LEFT says why, when it is a bound (also on the status page).
        "left": row.get("note") or left_words(row["next_in_s"]),
        "last": _local(row["last_run"], row["timezone"]),
        "passed": passed_words(row["last_ago_s"]),
    }


def _local(text: str | None, zone: str) -> str | None:
    """An ISO 8601 instant in the job's zone as `list-timers` writes it:
    "Thu 2026-12-03 09:00:00 CET"."""
    if text is None:
        return None
    instant = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(ZoneInfo(zone))
    return instant.strftime("%a %Y-%m-%d %H:%M:%S %Z")
