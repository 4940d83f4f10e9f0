"""Small helpers shared by the trigger tests: ISO text in, ISO text out."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from scheduler.triggers import CronTrigger, Trigger, compile_cron


def utc(text: str) -> datetime:
    """``2026-03-08T07:00:00Z`` (or any ISO 8601 with offset) as an aware datetime."""
    return datetime.fromisoformat(text)


def iso(moment: datetime) -> str:
    """A slot as ``2026-03-08T07:00:00Z``; fails loudly if it is not UTC."""
    assert moment.tzinfo is UTC
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def cron(text: str, tz: str = "UTC", job_name: str = "job") -> CronTrigger:
    return CronTrigger(compile_cron(text, job_name), ZoneInfo(tz))


def next_slots(trigger: Trigger, after: datetime | str, count: int) -> list[str]:
    """The next ``count`` slots after ``after``, each asked from the previous one."""
    moment = utc(after) if isinstance(after, str) else after
    found = []
    for _ in range(count):
        slot = trigger.next_slot(moment)
        if slot is None:
            break
        found.append(iso(slot))
        moment = slot
    return found
