"""Differential test: where APScheduler 3.11's CronTrigger and our cron rules (README.md) agree, same slots.

They agree when day-of-week is ``*`` (APScheduler ANDs the day fields and numbers Monday 0)
and, in a zone with DST, when no slot falls in the hours the clocks change (APScheduler repeats
fixed-time jobs on fall-back). Within that, it is an independent second implementation of
the calendar and of the zone offsets.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger as ApschedulerCron

from .helpers import cron, iso, next_slots, utc

EXPRESSIONS = [
    "*/5 * * * *",
    "0 12 * * *",
    "15 14 1 * *",
    "23 4-20/2 * * *",
    "0 0,12 1 */2 *",
    "0 9 8-14 * *",
    "30 9 * jan-mar *",
    "0 12 29 2 *",
    "0 23 31 * *",
    "*/13 */5 1,15 * *",
]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]


def apscheduler_slots(text: str, zone: str, after: str, count: int) -> list[str]:
    trigger = ApschedulerCron.from_crontab(text, timezone=zone)
    slots, previous, cursor = [], None, utc(after) + timedelta(seconds=1)
    for _ in range(count):
        slot: datetime = trigger.get_next_fire_time(previous, cursor)
        slots.append(iso(slot.astimezone(UTC)))
        previous, cursor = slot, slot + timedelta(seconds=1)
    return slots


def _near_a_dst_change(slot: str, zone: str) -> bool:
    if zone == "UTC":
        return False
    return 0 <= utc(slot).astimezone(cron("* * * * *", zone).tz).hour <= 3


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("text", EXPRESSIONS)
def test_agrees_with_apscheduler(text: str, zone: str) -> None:
    ours = next_slots(cron(text, zone), "2026-01-01T00:00:00Z", 200)
    theirs = apscheduler_slots(text, zone, "2026-01-01T00:00:00Z", 200)
    until = min(ours[-1], theirs[-1])  # ISO 8601 UTC strings sort in time order
    # Leave out local 00:00-03:59, where the two disagree on purpose around DST changes.
    ours = [slot for slot in ours if slot <= until and not _near_a_dst_change(slot, zone)]
    theirs = [slot for slot in theirs if slot <= until and not _near_a_dst_change(slot, zone)]
    assert len(ours) >= 50
    assert ours == theirs
