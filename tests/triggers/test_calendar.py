"""``calendar``: every n days, weeks, months or years at one local time, from a start day."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from time import perf_counter
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger

from scheduler.errors import InvalidSchedule
from scheduler.triggers import CalendarTrigger, calendar_trigger, count_slots, iter_slots

from .helpers import next_slots, utc

BERLIN, NY = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")


def _calendar(table: dict[str, object], start: date | datetime, zone: ZoneInfo) -> CalendarTrigger:
    trigger, _ = calendar_trigger(table, start, zone)
    return trigger


def test_every_other_monday_at_nine_local() -> None:
    trigger, text = calendar_trigger({"weeks": 2, "at": "09:00"}, date(2026, 1, 5), BERLIN)
    assert text == "every 2 weeks at 09:00 from 2026-01-05"
    assert trigger.describe() == 'calendar "every 2 weeks at 09:00 from 2026-01-05" (Europe/Berlin)'
    slots = next_slots(trigger, "2025-12-01T00:00:00Z", 8)
    assert slots == [
        "2026-01-05T08:00:00Z",
        "2026-01-19T08:00:00Z",
        "2026-02-02T08:00:00Z",
        "2026-02-16T08:00:00Z",
        "2026-03-02T08:00:00Z",
        "2026-03-16T08:00:00Z",
        "2026-03-30T07:00:00Z",  # summer time from 29 March: still 09:00 on the wall
        "2026-04-13T07:00:00Z",
    ]
    assert {utc(s).astimezone(BERLIN).strftime("%A %H:%M") for s in slots} == {"Monday 09:00"}


def test_every_three_months_on_the_15th() -> None:
    trigger, text = calendar_trigger({"months": 3, "at": "09:00"}, date(2026, 1, 15), NY)
    assert text == "every 3 months at 09:00 from 2026-01-15"
    assert next_slots(trigger, "2026-01-01T00:00:00Z", 5) == [
        "2026-01-15T14:00:00Z",
        "2026-04-15T13:00:00Z",
        "2026-07-15T13:00:00Z",
        "2026-10-15T13:00:00Z",
        "2027-01-15T14:00:00Z",
    ]


def test_a_month_without_the_day_is_skipped() -> None:
    # Like APScheduler: "the 31st" never moves to the 30th.
    monthly = _calendar({"months": 1, "at": "12:00"}, date(2026, 1, 31), ZoneInfo("UTC"))
    assert [s[:10] for s in next_slots(monthly, "2026-01-01T00:00:00Z", 7)] == [
        "2026-01-31",
        "2026-03-31",
        "2026-05-31",
        "2026-07-31",
        "2026-08-31",
        "2026-10-31",
        "2026-12-31",
    ]
    leap = _calendar({"years": 1}, date(2028, 2, 29), ZoneInfo("UTC"))
    assert next_slots(leap, "2000-01-01T00:00:00Z", 3) == [
        "2028-02-29T00:00:00Z",
        "2032-02-29T00:00:00Z",
        "2036-02-29T00:00:00Z",
    ]
    assert leap.previous_slot(utc("2035-12-31T00:00:00Z")) == utc("2032-02-29T00:00:00Z")
    assert count_slots(leap, utc("2028-01-01T00:00:00Z"), utc("2428-01-01T00:00:00Z")) == 97


@pytest.mark.parametrize(
    ("zone", "table", "start", "slots"),
    [
        # Spring forward: 02:30 does not exist; it fires when the clocks jump (cron's rule).
        ("Europe/Berlin", {"days": 1, "at": "02:30"}, date(2026, 3, 28),
         ["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]),
        ("America/New_York", {"weeks": 1, "at": "02:30"}, date(2026, 3, 1),
         ["2026-03-01T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-15T06:30:00Z"]),
        # Fall back: 02:30 (Berlin) and 01:30 (New York) happen twice; the first pass fires.
        ("Europe/Berlin", {"days": 1, "at": "02:30"}, date(2026, 10, 24),
         ["2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
        ("America/New_York", {"months": 1, "at": "01:30"}, date(2026, 9, 1),
         ["2026-09-01T05:30:00Z", "2026-10-01T05:30:00Z", "2026-11-01T05:30:00Z",
          "2026-12-01T06:30:00Z"]),
    ],
)  # fmt: skip
def test_dst_gap_fires_after_the_jump_and_overlap_in_the_first_pass(
    zone: str, table: dict[str, object], start: date, slots: list[str]
) -> None:
    trigger = _calendar(table, start, ZoneInfo(zone))
    assert next_slots(trigger, "2026-01-01T00:00:00Z", len(slots)) == slots
    for slot in slots:
        assert trigger.previous_slot(utc(slot)) == utc(slot)
        assert trigger.previous_slot(utc(slot) - timedelta(seconds=1)) != utc(slot)


def test_slots_before_the_start_instant_are_not_slots() -> None:
    # The grid starts on 5 January; 09:00 that day is before the start, 10:00.
    trigger, text = calendar_trigger({"days": 7, "at": "09:00"}, datetime(2026, 1, 5, 10), BERLIN)
    assert text == "every 7 days at 09:00 from 2026-01-05T10:00:00+01:00"
    assert next_slots(trigger, "2020-01-01T00:00:00Z", 2) == [
        "2026-01-12T08:00:00Z",
        "2026-01-19T08:00:00Z",
    ]
    assert trigger.previous_slot(utc("2026-01-12T07:59:59Z")) is None
    # An aware start reads the same as the local one.
    aware = _calendar({"days": 7, "at": "09:00"}, datetime(2026, 1, 5, 9, tzinfo=UTC), BERLIN)
    assert aware == trigger


def test_a_pure_function_of_the_config() -> None:
    first = _calendar({"weeks": 2, "at": "09:00"}, date(2026, 1, 5), BERLIN)
    second = _calendar({"at": time(9, 0), "weeks": 2}, date(2026, 1, 5), BERLIN)
    assert first == second
    far = utc("2426-06-01T00:00:00Z")  # 10,444 weeks after 2026-01-05, a Monday
    assert first.next_slot(far) == second.next_slot(far) == utc("2426-06-01T07:00:00Z")
    assert first.previous_slot(far) == utc("2426-05-18T07:00:00Z")
    assert first.previous_slot(utc("2026-01-05T07:59:59Z")) is None


def test_the_end_of_time() -> None:
    daily = _calendar({"days": 1, "at": "12:00"}, date(9999, 12, 30), ZoneInfo("UTC"))
    assert next_slots(daily, "9999-12-01T00:00:00Z", 5) == [
        "9999-12-30T12:00:00Z",
        "9999-12-31T12:00:00Z",
    ]
    late = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-12)))
    assert daily.previous_slot(late) == utc("9999-12-31T12:00:00Z")
    # 23:00 on 31 December 9999 in New York is in the year 10000 in UTC: not a slot.
    ny = _calendar({"days": 1, "at": "23:00"}, date(9999, 12, 30), NY)
    assert next_slots(ny, "9999-12-01T00:00:00Z", 5) == ["9999-12-31T04:00:00Z"]
    assert ny.previous_slot(late) == utc("9999-12-31T04:00:00Z")
    yearly = _calendar({"years": 1}, date(9998, 2, 28), ZoneInfo("UTC"))
    assert next_slots(yearly, "9998-01-01T00:00:00Z", 5) == [
        "9998-02-28T00:00:00Z",
        "9999-02-28T00:00:00Z",
    ]


# (table, start, zone, years): the slots must be APScheduler's, except on days whose time a
# spring-forward skips, where APScheduler drops the day and we fire as the clocks jump.
DIFFERENTIAL = [
    ({"weeks": 2, "at": "09:00"}, date(2026, 1, 5), "Europe/Berlin", 5),
    ({"months": 3, "at": "09:00"}, date(2026, 1, 15), "America/New_York", 8),
    ({"months": 1, "at": "18:45:30"}, date(2026, 1, 31), "Europe/Berlin", 6),
    ({"days": 1, "at": "02:30"}, date(2026, 1, 1), "America/New_York", 3),
    ({"days": 3, "at": "02:30"}, date(2026, 1, 1), "Europe/Berlin", 4),
    ({"days": 1, "at": "01:30"}, date(2026, 6, 1), "America/New_York", 2),
    ({"weeks": 1, "at": "00:00"}, date(2026, 1, 4), "America/Santiago", 4),
    ({"days": 1, "at": "00:15"}, date(2026, 8, 1), "America/Santiago", 1),
    ({"years": 1, "at": "06:00"}, date(2028, 2, 29), "Australia/Lord_Howe", 40),
    ({"years": 2, "at": "12:00"}, date(2026, 6, 30), "UTC", 30),
]


def _apscheduler_slots(
    table: dict[str, object], start: date, zone: ZoneInfo, until: datetime
) -> list[datetime]:
    hour, minute, second = (int(p) for p in f"{table['at']}:00".split(":")[:3])
    units = {k: v for k, v in table.items() if k != "at"}
    theirs = CalendarIntervalTrigger(
        **units,
        hour=hour,
        minute=minute,
        second=second,
        start_date=start,
        timezone=zone,
    )
    found: list[datetime] = []
    now = datetime.now(UTC)  # only its jitter reads it; there is none
    fire = theirs.get_next_fire_time(None, now)
    while fire is not None and fire <= until:
        found.append(fire.astimezone(UTC))
        fire = theirs.get_next_fire_time(fire, now)
    return found


@pytest.mark.parametrize(("table", "start", "zone", "years"), DIFFERENTIAL)
def test_the_same_slots_as_apscheduler(
    table: dict[str, object], start: date, zone: str, years: int
) -> None:
    tz = ZoneInfo(zone)
    ours = _calendar(table, start, tz)
    until = datetime(start.year + years, start.month, 1, tzinfo=UTC)
    theirs = _apscheduler_slots(table, start, tz, until)
    mine = list(iter_slots(ours, datetime.combine(start, time(0), UTC) - timedelta(days=2), until))
    assert len(theirs) >= 10
    gap_days = [s for s in mine if s.astimezone(tz).time() != ours.at_time()]
    assert sorted(set(mine) - set(gap_days)) == theirs
    for slot in gap_days:
        # A gap day: the wall time did not exist, so the slot is the instant the clocks jumped.
        before = slot - timedelta(seconds=1)
        assert before.astimezone(tz).utcoffset() != slot.astimezone(tz).utcoffset()
        assert slot.astimezone(tz).time() > ours.at_time()
    assert count_slots(
        ours, datetime.combine(start, time(0), UTC) - timedelta(days=2), until
    ) == len(mine)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"weeks": 0}, "weeks must be a whole number >= 1, got 0"),
        ({"days": 1.5}, "days must be a whole number >= 1, got 1.5"),
        ({"months": True}, "months must be a whole number >= 1, got True"),
        ({"months": "3"}, "months must be a whole number >= 1, got '3'"),
        ({"years": 101}, "years must be at most 100 (100 years), got 101"),
        ({"weeks": 5219}, "weeks must be at most 5218 (100 years), got 5219"),
        ({}, "needs exactly one of days, weeks, months, years (found none)"),
        ({"at": "09:00"}, "needs exactly one of days, weeks, months, years (found none)"),
        ({"weeks": 2, "days": 1}, "needs exactly one of days, weeks, months, years (found days, weeks)"),
        ({"weeks": 2, "hour": 9}, "unknown key 'hour' (expected one of days, weeks, months, years and at)"),
        ({"weeks": 2, "at": "9:00"}, "at must be a time of day \"HH:MM\" or \"HH:MM:SS\", got '9:00'"),
        ({"weeks": 2, "at": "24:00"}, "at must be a time of day \"HH:MM\" or \"HH:MM:SS\", got '24:00'"),
        ({"weeks": 2, "at": "09:60"}, "at must be a time of day \"HH:MM\" or \"HH:MM:SS\", got '09:60'"),
        ({"weeks": 2, "at": 900}, "at must be a time of day \"HH:MM\" or \"HH:MM:SS\", got 900"),
        ({"weeks": 2, "at": time(9, 0, 0, 5)}, "at must be a local time of whole seconds, got 09:00:00.000005"),
    ],
)  # fmt: skip
def test_bad_tables_are_one_line(table: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        calendar_trigger(table, date(2026, 1, 5), BERLIN)
    assert str(caught.value) == message


def test_a_start_of_a_fraction_of_a_second_is_refused() -> None:
    with pytest.raises(InvalidSchedule) as caught:
        calendar_trigger({"days": 1}, datetime(2026, 1, 5, 0, 0, 0, 500_000, tzinfo=UTC), BERLIN)
    assert str(caught.value) == "start 2026-01-05T00:00:00.500000+00:00 is not a whole second"


def test_next_slots_of_many_jobs_are_cheap() -> None:
    jobs = [
        _calendar(
            {"weeks": 1 + i % 4, "at": f"{i % 24:02d}:{i % 60:02d}"},
            date(2026, 1, 1 + i % 28),
            BERLIN,
        )
        for i in range(10_000)
    ]
    after = utc("2026-12-02T14:00:00Z")
    began = perf_counter()
    slots = [job.next_slot(after) for job in jobs]
    elapsed = perf_counter() - began
    assert all(slot is not None and slot > after for slot in slots)
    print(f"10,000 calendar jobs' next slots: {elapsed * 1000:.0f} ms")
    assert elapsed < 1.0


def test_a_start_whose_local_date_is_past_9999_is_refused() -> None:
    kiritimati = ZoneInfo("Pacific/Kiritimati")  # UTC+14
    with pytest.raises(InvalidSchedule) as caught:
        calendar_trigger({"days": 1}, datetime(9999, 12, 31, 23, tzinfo=UTC), kiritimati)
    assert str(caught.value) == (
        "start 9999-12-31T23:00:00+00:00 is past the years 1-9999 in Pacific/Kiritimati"
    )
