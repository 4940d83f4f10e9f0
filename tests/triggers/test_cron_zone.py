"""The zone timeline: constant-offset periods found by probing zoneinfo."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from scheduler.triggers.cron.zone import offset_s_at, period_at
from scheduler.triggers.instants import to_epoch_s

from .helpers import utc

HOUR_S = 3600


@pytest.mark.parametrize(
    ("tz", "at", "offset_h", "before_h"),
    [
        ("America/New_York", "2026-03-08T07:00:00Z", -4, -5),
        ("America/New_York", "2026-11-01T06:00:00Z", -5, -4),
        ("Europe/Berlin", "2026-03-29T01:00:00Z", 2, 1),
        ("Europe/Berlin", "2026-10-25T01:00:00Z", 1, 2),
        ("America/Santiago", "2026-04-05T03:00:00Z", -4, -3),
        ("America/Santiago", "2026-09-06T04:00:00Z", -3, -4),
        ("Atlantic/Azores", "2026-03-29T01:00:00Z", 0, -1),
        ("Australia/Lord_Howe", "2026-04-04T15:00:00Z", 10.5, 11),
        ("Australia/Lord_Howe", "2026-10-03T15:30:00Z", 11, 10.5),
    ],
)
def test_transitions_are_found_to_the_second(
    tz: str, at: str, offset_h: float, before_h: float
) -> None:
    at_s = to_epoch_s(utc(at))
    period = period_at(ZoneInfo(tz), at_s)
    assert (period.start_s, period.offset_s, period.offset_before_s) == (
        at_s,
        int(offset_h * HOUR_S),
        int(before_h * HOUR_S),
    )
    assert period_at(ZoneInfo(tz), at_s - 1).end_s == at_s


@pytest.mark.parametrize(
    ("tz", "at", "wall_before", "wall_after"),
    [
        # The zones the DST tests use for a change at midnight, checked against the tzdata.
        ("America/Santiago", "2026-09-06T04:00:00Z", "2026-09-05T23:59:59", "2026-09-06T01:00:00"),
        ("America/Santiago", "2026-04-05T03:00:00Z", "2026-04-04T23:59:59", "2026-04-04T23:00:00"),
        ("Atlantic/Azores", "2026-10-25T01:00:00Z", "2026-10-25T00:59:59", "2026-10-25T00:00:00"),
    ],
)
def test_midnight_zones_really_change_at_midnight(
    tz: str, at: str, wall_before: str, wall_after: str
) -> None:
    at_s, zone = to_epoch_s(utc(at)), ZoneInfo(tz)
    walls = [datetime.fromtimestamp(s, zone).replace(tzinfo=None) for s in (at_s - 1, at_s)]
    assert [w.isoformat() for w in walls] == [wall_before, wall_after]


def test_periods_are_cut_at_each_utc_new_year() -> None:
    period = period_at(ZoneInfo("UTC"), to_epoch_s(utc("2026-06-01T00:00:00Z")))
    assert (period.start_s, period.end_s) == (
        to_epoch_s(utc("2026-01-01T00:00:00Z")),
        to_epoch_s(utc("2027-01-01T00:00:00Z")),
    )
    assert period.offset_s == period.offset_before_s == 0


@pytest.mark.parametrize(
    "tz", ["America/New_York", "Australia/Lord_Howe", "America/Santiago", "Asia/Kolkata"]
)
def test_every_hour_of_a_year_has_the_offset_zoneinfo_gives(tz: str) -> None:
    zone = ZoneInfo(tz)
    start_s = to_epoch_s(utc("2026-01-01T00:00:00Z"))
    for at_s in range(start_s, start_s + 365 * 24 * HOUR_S, HOUR_S // 2):
        period = period_at(zone, at_s)
        assert period.start_s <= at_s < period.end_s
        assert period.offset_s == offset_s_at(zone, at_s)
