"""DST, per job time zone, as README.md's "Jobs and schedules" fixes it.

Fixed-time jobs: a time in a spring-forward gap fires once, at the first instant after the gap;
in a fall-back overlap only the first pass fires. Wildcard jobs (minute or hour starts with
``*``): nothing in the gap, both passes of the overlap.

Transitions used (2026, checked against zoneinfo in test_cron_zone.py):
- America/New_York: 03-08 07:00Z (02:00 EST -> 03:00 EDT), 11-01 06:00Z (02:00 EDT -> 01:00 EST)
- Europe/Berlin: 03-29 01:00Z (02:00 -> 03:00), 10-25 01:00Z (03:00 -> 02:00)
- America/Santiago, at midnight: 04-05 03:00Z (24:00 -> 23:00), 09-06 04:00Z (00:00 -> 01:00)
- Atlantic/Azores, at midnight: 03-29 01:00Z (00:00 -> 01:00), 10-25 01:00Z (01:00 -> 00:00)
(America/Havana no longer falls back in the pinned tzdata 2026f; America/Asuncion has no DST.)
- Australia/Lord_Howe, 30 minutes: 10-03 15:30Z (02:00 -> 02:30), 04-04 15:00Z (02:00 -> 01:30)
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from scheduler.triggers import iter_slots

from .helpers import cron, iso, next_slots

NEW_YORK = "America/New_York"
BERLIN = "Europe/Berlin"
SANTIAGO = "America/Santiago"
AZORES = "Atlantic/Azores"
LORD_HOWE = "Australia/Lord_Howe"

CASES = [
    # --- New York, spring forward: 02:00-02:59 does not exist on 03-08.
    (NEW_YORK, "30 2 * * *", "2026-03-07T00:00:00Z",
     ["2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]),
    # Several gap times collapse into one slot, shared with a real 03:00.
    (NEW_YORK, "0,15,30,45 2,3 * * *", "2026-03-08T06:00:00Z",
     ["2026-03-08T07:00:00Z", "2026-03-08T07:15:00Z", "2026-03-08T07:30:00Z",
      "2026-03-08T07:45:00Z", "2026-03-09T06:00:00Z"]),
    (NEW_YORK, "0 30 2 * * *", "2026-03-08T06:00:00Z", ["2026-03-08T07:00:00Z"]),
    (NEW_YORK, "0 0-23 * * *", "2026-03-08T05:30:00Z",
     ["2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"]),
    (NEW_YORK, "*/30 * * * *", "2026-03-08T06:15:00Z",
     ["2026-03-08T06:30:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:30:00Z"]),
    (NEW_YORK, "15 * * * *", "2026-03-08T05:30:00Z",
     ["2026-03-08T06:15:00Z", "2026-03-08T07:15:00Z"]),  # 01:15 EST, then 03:15 EDT
    # --- New York, fall back: 01:00-01:59 happens twice on 11-01.
    (NEW_YORK, "30 1 * * *", "2026-10-31T00:00:00Z",
     ["2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]),
    (NEW_YORK, "*/30 * * * *", "2026-11-01T04:45:00Z",
     ["2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z", "2026-11-01T06:00:00Z",
      "2026-11-01T06:30:00Z", "2026-11-01T07:00:00Z"]),
    (NEW_YORK, "@hourly", "2026-11-01T04:30:00Z",
     ["2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"]),
    (NEW_YORK, "0 0-23 * * *", "2026-11-01T04:30:00Z",
     ["2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z"]),  # 01:00 EDT, 02:00 EST
    (NEW_YORK, "* 1 * * *", "2026-11-01T06:58:30Z",
     ["2026-11-01T06:59:00Z", "2026-11-02T06:00:00Z"]),  # wildcard minute: both passes
    # --- Berlin.
    (BERLIN, "30 2 * * *", "2026-03-28T12:00:00Z",
     ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]),
    (BERLIN, "30 2 * * *", "2026-10-24T12:00:00Z",
     ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
    (BERLIN, "15 * * * *", "2026-03-29T00:00:00Z",
     ["2026-03-29T00:15:00Z", "2026-03-29T01:15:00Z"]),  # 01:15 CET, then 03:15 CEST
    (BERLIN, "15 * * * *", "2026-10-25T00:00:00Z",
     ["2026-10-25T00:15:00Z", "2026-10-25T01:15:00Z", "2026-10-25T02:15:00Z"]),
    # --- Santiago changes at midnight: the daily midnight job itself is in the gap.
    (SANTIAGO, "0 0 * * *", "2026-09-04T12:00:00Z",
     ["2026-09-05T04:00:00Z", "2026-09-06T04:00:00Z", "2026-09-07T03:00:00Z"]),
    (SANTIAGO, "@midnight", "2026-09-05T12:00:00Z", ["2026-09-06T04:00:00Z"]),
    (SANTIAGO, "*/30 0 * * *", "2026-09-05T12:00:00Z",
     ["2026-09-07T03:00:00Z", "2026-09-07T03:30:00Z"]),  # no 00:xx on 09-06 at all
    # ... and falls back from 24:00 to 23:00, so 23:xx of 04-04 happens twice.
    (SANTIAGO, "30 23 * * *", "2026-04-04T12:00:00Z",
     ["2026-04-05T02:30:00Z", "2026-04-06T03:30:00Z"]),
    (SANTIAGO, "*/30 23 * * *", "2026-04-04T12:00:00Z",
     ["2026-04-05T02:00:00Z", "2026-04-05T02:30:00Z", "2026-04-05T03:00:00Z",
      "2026-04-05T03:30:00Z", "2026-04-06T03:00:00Z"]),
    (SANTIAGO, "0 0 * * *", "2026-04-04T12:00:00Z", ["2026-04-05T04:00:00Z"]),
    # --- The Azores skip and repeat the midnight hour itself.
    (AZORES, "@daily", "2026-03-27T12:00:00Z",
     ["2026-03-28T01:00:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"]),
    (AZORES, "0 0 * * *", "2026-10-23T12:00:00Z",
     ["2026-10-24T00:00:00Z", "2026-10-25T00:00:00Z", "2026-10-26T01:00:00Z"]),
    (AZORES, "*/30 0 * * *", "2026-10-24T12:00:00Z",
     ["2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z",
      "2026-10-25T01:30:00Z", "2026-10-26T01:00:00Z"]),
    # --- Lord Howe moves by 30 minutes.
    (LORD_HOWE, "15 2 * * *", "2026-10-02T12:00:00Z",
     ["2026-10-02T15:45:00Z", "2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"]),
    (LORD_HOWE, "*/15 * * * *", "2026-10-03T15:00:00Z",
     ["2026-10-03T15:15:00Z", "2026-10-03T15:30:00Z", "2026-10-03T15:45:00Z"]),
    (LORD_HOWE, "45 1 * * *", "2026-04-04T12:00:00Z",
     ["2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z"]),
    (LORD_HOWE, "*/15 * * * *", "2026-04-04T14:20:00Z",
     ["2026-04-04T14:30:00Z", "2026-04-04T14:45:00Z", "2026-04-04T15:00:00Z",
      "2026-04-04T15:15:00Z", "2026-04-04T15:30:00Z"]),
]  # fmt: skip


@pytest.mark.parametrize(("tz", "text", "after", "expected"), CASES)
def test_dst(tz: str, text: str, after: str, expected: list[str]) -> None:
    assert next_slots(cron(text, tz), after, len(expected)) == expected


@pytest.mark.parametrize(
    ("fold", "expected"),
    [(0, "2026-11-01T06:00:00Z"), (1, "2026-11-01T07:00:00Z")],
)
def test_after_is_read_as_an_instant_fold_included(fold: int, expected: str) -> None:
    # 01:30 local exists twice; fold picks the pass. Python calls both datetimes equal.
    after = datetime(2026, 11, 1, 1, 30, fold=fold, tzinfo=ZoneInfo(NEW_YORK))
    slot = cron("0 * * * *", NEW_YORK).next_slot(after)
    assert slot is not None
    assert iso(slot) == expected


YEAR_CASES = [
    # 365 days, each with its one 02:30; on 03-08 it fires at 03:00 EDT instead.
    (NEW_YORK, "30 2 * * *", 365),
    # Both ends are EST midnights, so the window is 365 * 24 = 8,760 real hours, each of which
    # starts at a local :00 (the 23-hour and 25-hour days cancel out).
    (NEW_YORK, "0 * * * *", 8_760),
    (NEW_YORK, "*/30 * * * *", 17_520),
    # Fixed hours: 03-08 has 23 slots (02:00 and 03:00 collapse), 11-01 has 24 (01:00 once).
    (NEW_YORK, "0 0-23 * * *", 363 * 24 + 23 + 24),
    (BERLIN, "0 * * * *", 8_760),
    (BERLIN, "0 2 * * *", 365),
    (SANTIAGO, "0 0 * * *", 365),
    (SANTIAGO, "0 * * * *", 8_760),  # both ends are -03 midnights
    (AZORES, "0 0 * * *", 365),
    (LORD_HOWE, "0 * * * *", 8_760 - 1),  # the 02:00 of 10-04 does not exist
    (LORD_HOWE, "*/30 * * * *", 17_520),  # the 30-minute gap and overlap cancel out
]


@pytest.mark.parametrize(("tz", "text", "expected"), YEAR_CASES)
def test_a_full_year(tz: str, text: str, expected: int) -> None:
    zone = ZoneInfo(tz)
    after, until = datetime(2026, 1, 1, tzinfo=zone), datetime(2027, 1, 1, tzinfo=zone)
    trigger = cron(text, tz)
    slots = list(iter_slots(trigger, after, until))
    assert len(slots) == expected
    assert all(a < b for a, b in pairwise(slots))  # strictly increasing
    assert all(s.microsecond == 0 for s in slots)


def test_lord_howe_hourly_year_misses_only_the_gap_hour() -> None:
    trigger = cron("0 * * * *", LORD_HOWE)
    zone = ZoneInfo(LORD_HOWE)
    slots = {
        iso(s)
        for s in iter_slots(
            trigger, datetime(2026, 10, 4, tzinfo=zone), datetime(2026, 10, 4, 4, tzinfo=zone)
        )
    }
    assert slots == {"2026-10-03T14:30:00Z", "2026-10-03T16:00:00Z", "2026-10-03T17:00:00Z"}


def test_a_wildcard_job_whose_every_day_is_a_gap_day_never_fires() -> None:
    # Since 2007 New York springs forward at 02:00 on the second Sunday of March.
    assert cron("*/5 2 * 3 SUN#2", NEW_YORK).next_slot(datetime(2026, 1, 1, tzinfo=UTC)) is None
    # The same hours as fixed times fire once, when the clocks jump.
    slot = cron("0-55/5 2 * 3 SUN#2", NEW_YORK).next_slot(datetime(2026, 1, 1, tzinfo=UTC))
    assert slot is not None
    assert iso(slot) == "2026-03-08T07:00:00Z"


def test_slots_stop_a_day_before_datetime_max() -> None:
    # 9999-12-31T23:00Z would be 10000-01-01 in Berlin: no slot is that close to the end.
    found = next_slots(cron("0 0 1 1 *", BERLIN), "9998-06-01T00:00:00Z", 3)
    assert found == ["9998-12-31T23:00:00Z"]
