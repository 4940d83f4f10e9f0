"""``previous_slot`` and ``count_slots`` agree with walking ``next_slot``, for every trigger kind.

Each case walks a window slot by slot (the brute force), then asks the shortcuts about the
window, about every slot in it (or a sample) and about random instants and sub-windows.
Windows cross DST changes in both directions (New York, Berlin, Lord Howe's 30 minutes,
Santiago's midnight), a whole skipped day (Apia, 2011), year ends and leap days.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from scheduler.clock import utc as at
from scheduler.triggers import AtTrigger, EveryTrigger, Trigger, calendar_trigger, count_slots

from .helpers import cron, utc
from .reference import walk_s

NY, BERLIN, LORD_HOWE, SANTIAGO = (
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "America/Santiago",
)
# (first, last) days around each zone's changes in 2026 and around other edges.
DAYS = {
    "ny-spring": ("2026-03-07", "2026-03-10"),
    "ny-fall": ("2026-10-31", "2026-11-03"),
    "berlin-spring": ("2026-03-28", "2026-03-31"),
    "berlin-fall": ("2026-10-24", "2026-10-27"),
    "howe-fall": ("2026-04-03", "2026-04-06"),
    "howe-spring": ("2026-10-02", "2026-10-05"),
    "santiago-fall": ("2026-04-04", "2026-04-07"),
    "santiago-spring": ("2026-09-05", "2026-09-08"),
    "new-year": ("2025-12-30", "2026-01-02"),
    "leap-day": ("2028-02-27", "2028-03-02"),
    "apia-skips-a-day": ("2011-12-28", "2012-01-02"),
}
FREQUENT_WINDOWS = list(DAYS)
YEARS_2 = ("2025-06-01", "2027-06-01")
YEARS_30 = ("2000-01-01", "2030-01-01")
SINCE_1970 = ("1970-01-01", "2026-11-26")

# (schedule, zone, windows); frequent schedules get the short windows, rare ones long ones.
CRON_CASES: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("* * * * *", "UTC", [DAYS["new-year"], DAYS["leap-day"]]),
    ("* * * * *", NY, [DAYS["ny-spring"], DAYS["ny-fall"]]),
    ("*/7 * * * *", BERLIN, [DAYS["berlin-spring"], DAYS["berlin-fall"]]),
    ("*/10 1-3 * * *", LORD_HOWE, [DAYS["howe-fall"], DAYS["howe-spring"]]),
    ("*/30 * * * *", SANTIAGO, [DAYS["santiago-fall"], DAYS["santiago-spring"]]),
    ("*/15 * * * * *", NY, [("2026-03-08T05:00:00Z", "2026-03-08T09:00:00Z")]),
    ("7,37 * 1-3 * * *", BERLIN, [("2026-10-25T00:00:00Z", "2026-10-25T03:00:00Z")]),
    ("30 2 * * *", NY, [DAYS["ny-spring"], YEARS_2, SINCE_1970]),
    ("0,15,30,45 2,3 * * *", NY, [DAYS["ny-spring"], DAYS["ny-fall"], YEARS_2]),
    ("30 1 * * *", NY, [DAYS["ny-fall"], YEARS_2]),
    ("* 1 * * *", NY, [DAYS["ny-fall"]]),
    ("0 * * * *", NY, [YEARS_2]),
    ("30 2 * * *", BERLIN, [DAYS["berlin-spring"], SINCE_1970]),
    ("*/20 2 * * *", BERLIN, [DAYS["berlin-spring"], DAYS["berlin-fall"], YEARS_2]),
    ("0 3 * * *", BERLIN, [DAYS["berlin-fall"], YEARS_2]),
    ("15 2 * * *", LORD_HOWE, [DAYS["howe-spring"], YEARS_2]),
    ("45 1 * * *", LORD_HOWE, [DAYS["howe-fall"], YEARS_2]),
    ("0 0 * * *", SANTIAGO, [DAYS["santiago-fall"], DAYS["santiago-spring"], YEARS_30]),
    ("30 23 * * *", SANTIAGO, [DAYS["santiago-fall"], YEARS_2]),
    ("*/30 23,0 * * *", SANTIAGO, [DAYS["santiago-fall"], DAYS["santiago-spring"]]),
    ("0 12 * * *", "Pacific/Apia", [DAYS["apia-skips-a-day"]]),
    ("*/30 * * * *", "Pacific/Apia", [DAYS["apia-skips-a-day"]]),
    ("0 0 29 2 *", "UTC", [YEARS_30, ("2096-01-01", "2105-01-01")]),
    ("0 12 L * *", NY, [YEARS_30]),
    ("0 9 15W * *", "UTC", [YEARS_30]),
    ("0 9 1W,31W * *", BERLIN, [YEARS_30]),
    ("0 8 * * 5L", "UTC", [YEARS_30]),
    ("0 18 LW * *", BERLIN, [YEARS_30]),
    ("0 18 LW * MON", NY, [YEARS_2]),
    ("0 8 * * MON#2,1#5", LORD_HOWE, [YEARS_30]),
    ("0 0 1,15 * *", "UTC", [YEARS_30]),
    ("0 0 13 * 5", "UTC", [YEARS_30]),  # both day fields: the 13th or a Friday
    ("0 0 * FEB,AUG SUN", SANTIAGO, [YEARS_30]),
    ("*/15 9-17 * * 1-5", NY, [YEARS_2]),
    ("H H * * *", BERLIN, [YEARS_2]),
    ("H/15 H(8-10) * * *", "UTC", [YEARS_2]),
    ("30 0 0 * * *", "UTC", [DAYS["new-year"], YEARS_2]),
    ("@yearly", NY, [SINCE_1970]),
    ("@weekly", "Asia/Kathmandu", [YEARS_30]),
    ("0 0 1 1 *", "UTC", [("0002-01-01", "0040-01-01"), ("9975-01-01", "9999-12-31")]),
]
EVERY_CASES: list[tuple[int, str, list[tuple[str, str]]]] = [
    (1, "2026-01-01T00:00:00Z", [("2025-12-31T23:50:00Z", "2026-01-01T01:00:00Z")]),
    (7, "2026-01-01T00:00:03Z", [DAYS["new-year"]]),
    (30, "1970-01-01T00:00:00Z", [DAYS["leap-day"]]),
    (7 * 3600, "2026-01-01T01:02:03Z", [YEARS_30]),
    (86_401, "1969-12-31T23:59:58Z", [SINCE_1970, ("9990-01-01", "9999-12-31T23:59:59")]),
]

# (calendar table, start, zone, windows)
CALENDAR_CASES: list[tuple[dict[str, object], str, str, list[tuple[str, str]]]] = [
    ({"weeks": 2, "at": "09:00"}, "2026-01-05", BERLIN, [YEARS_2, YEARS_30]),
    ({"days": 1, "at": "02:30"}, "2026-01-01", NY, [DAYS["ny-spring"], DAYS["ny-fall"], YEARS_2]),
    ({"days": 1, "at": "02:15"}, "2026-01-01", LORD_HOWE, [DAYS["howe-spring"], YEARS_2]),
    ({"days": 1, "at": "00:00"}, "2026-01-01", SANTIAGO, [DAYS["santiago-spring"], YEARS_2]),
    ({"days": 1, "at": "12:00"}, "2011-12-01", "Pacific/Apia", [DAYS["apia-skips-a-day"]]),
    ({"days": 3, "at": "02:30"}, "2026-01-01T05:00:00", BERLIN, [DAYS["berlin-spring"], YEARS_2]),
    ({"months": 1, "at": "12:00"}, "2000-01-31", "UTC", [YEARS_30, SINCE_1970]),
    ({"months": 7, "at": "01:30"}, "2026-01-31", NY, [YEARS_30]),
    ({"years": 1}, "2000-02-29", "UTC", [YEARS_30, ("2096-01-01", "2600-01-01")]),
    ({"years": 3, "at": "23:59:59"}, "1970-12-31", "Asia/Kathmandu", [SINCE_1970]),
    ({"days": 1}, "9999-12-01", "UTC", [("9999-11-01", "9999-12-31T23:59:59")]),
]


def _instant_s(text: str, end: bool) -> int:
    if "T" not in text:
        text += "T23:59:59Z" if end else "T00:00:00Z"
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(moment.replace(tzinfo=moment.tzinfo or UTC).timestamp())


def _check(trigger: Trigger, window: tuple[str, str]) -> None:
    after_s, until_s = _instant_s(window[0], end=False), _instant_s(window[1], end=True)
    slots = walk_s(trigger, after_s, until_s)
    assert count_slots(trigger, at(after_s), at(until_s)) == len(slots)
    _assert_previous(trigger, slots[-1:], after_s, until_s)
    rng = random.Random(f"{trigger.describe()} {window}")
    sample = range(len(slots)) if len(slots) <= 3_000 else rng.sample(range(len(slots)), 3_000)
    for index in sample:
        assert trigger.previous_slot(at(slots[index])) == at(slots[index])
        _assert_previous(
            trigger, slots[index - 1 : index] if index else [], after_s, slots[index] - 1
        )
    for _ in range(200):
        low_s, high_s = sorted(rng.randint(after_s, until_s) for _ in range(2))
        if rng.random() < 0.3 and slots:  # on a slot, or a second either side
            low_s = rng.choice(slots) + rng.choice((-1, 0, 1))
        below_high = bisect_right(slots, high_s)
        expected = below_high - bisect_right(slots, low_s)
        assert count_slots(trigger, at(low_s), at(high_s)) == max(expected, 0)
        _assert_previous(trigger, slots[below_high - 1 : below_high], after_s, high_s)


def _assert_previous(trigger: Trigger, last: list[int], after_s: int, until_s: int) -> None:
    """previous_slot(until_s) is the slot in ``last``, or (none given) at or before after_s."""
    found = trigger.previous_slot(at(until_s))
    if last:
        assert found == at(last[0]), (trigger.describe(), at(until_s))
    else:
        assert found is None or found <= at(after_s), (trigger.describe(), at(until_s))


@pytest.mark.parametrize(("text", "zone", "windows"), CRON_CASES)
def test_cron_previous_and_count_agree_with_walking(
    text: str, zone: str, windows: list[tuple[str, str]]
) -> None:
    trigger = cron(text, zone)
    for window in windows:
        _check(trigger, window)


@pytest.mark.parametrize(("every_s", "start", "windows"), EVERY_CASES)
def test_every_previous_and_count_agree_with_walking(
    every_s: int, start: str, windows: list[tuple[str, str]]
) -> None:
    trigger = EveryTrigger(every_s, utc(start))
    for window in windows:
        _check(trigger, window)


@pytest.mark.parametrize(("table", "start", "zone", "windows"), CALENDAR_CASES)
def test_calendar_previous_and_count_agree_with_walking(
    table: dict[str, object], start: str, zone: str, windows: list[tuple[str, str]]
) -> None:
    trigger, _ = calendar_trigger(table, datetime.fromisoformat(start), ZoneInfo(zone))
    for window in windows:
        _check(trigger, window)


def test_at_previous_slot() -> None:
    trigger = AtTrigger(utc("2026-12-01T08:00:00Z"))
    assert trigger.previous_slot(utc("2026-12-01T07:59:59.999Z")) is None
    assert trigger.previous_slot(utc("2026-12-01T08:00:00Z")) == trigger.at
    assert trigger.previous_slot(utc("2026-12-01T09:00:00+01:00")) == trigger.at
    assert trigger.previous_slot(utc("2099-01-01T00:00:00Z")) == trigger.at
    _check(trigger, ("2026-11-30", "2026-12-02"))


@pytest.mark.parametrize(
    "trigger",
    [cron("*/5 * * * *", NY), EveryTrigger(300, utc("2026-01-01T00:00:00Z"))],
    ids=["cron", "every"],
)
def test_previous_slot_rounds_a_fraction_down_and_reads_any_zone(trigger: Trigger) -> None:
    assert trigger.previous_slot(utc("2026-11-01T06:04:59.999999Z")) == utc("2026-11-01T06:00Z")
    assert trigger.previous_slot(utc("2026-11-01T01:05:00-05:00")) == utc("2026-11-01T06:05Z")


def test_previous_slot_before_the_first_slot_is_none() -> None:
    assert (
        EveryTrigger(60, utc("2026-01-01T00:00:00Z")).previous_slot(utc("2025-06-01T00:00:00Z"))
        is None
    )
    yearly = cron("0 0 1 1 *")
    assert yearly.previous_slot(utc("0002-06-01T00:00:00Z")) == utc("0002-01-01T00:00:00Z")
    # Cron slots start in the year 2, clear of datetime.min: walking forwards agrees.
    assert yearly.previous_slot(utc("0001-06-01T00:00:00Z")) is None
    assert yearly.next_slot(utc("0001-06-01T00:00:00Z")) == utc("0002-01-01T00:00:00Z")


def test_previous_slot_at_the_end_of_time() -> None:
    # 11:59:59 on 10000-01-01 in UTC: later than any slot can be.
    late = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-12)))
    every = EveryTrigger(1, utc("1970-01-01T00:00:00Z"))
    assert every.previous_slot(late) == utc("9999-12-31T23:59:59Z")
    assert every.next_slot(utc("9999-12-31T23:59:59Z")) is None
    daily = cron("0 0 * * *")  # cron slots stop short of datetime.max, a day early
    assert daily.previous_slot(late) == utc("9999-12-29T00:00:00Z")
    assert daily.next_slot(utc("9999-12-29T00:00:00Z")) is None


def test_a_wildcard_job_whose_hours_dst_skips_gives_up_like_next_slot() -> None:
    # 02:xx on New York's second Sunday in March: never again since 2007.
    trigger = cron("*/5 2 * 3 SUN#2", NY)
    last = trigger.previous_slot(utc("2026-11-26T00:00:00Z"))
    assert last is not None
    assert trigger.next_slot(last) is None
    assert trigger.next_slot(utc("2006-01-01T00:00:00Z")) is not None
    assert count_slots(trigger, last, utc("2026-11-26T00:00:00Z")) == 0
