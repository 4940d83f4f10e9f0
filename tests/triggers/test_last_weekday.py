"""``LW`` in day-of-month: the last Monday-Friday of the month, against the calendar."""

from __future__ import annotations

import calendar
from datetime import date

import pytest

from scheduler.errors import InvalidSchedule
from scheduler.triggers import compile_cron, count_slots

from .helpers import cron, next_slots, utc

# 2026-2027 months that end on a weekend, checked by hand against a printed calendar:
# the last weekday is the Friday before.
WEEKEND_ENDS = {
    (2026, 1): 30,  # Saturday 31st
    (2026, 2): 27,  # Saturday 28th
    (2026, 5): 29,  # Sunday 31st
    (2026, 10): 30,  # Saturday 31st
    (2027, 1): 29,  # Sunday 31st
    (2027, 2): 26,  # Sunday 28th
    (2027, 7): 30,  # Saturday 31st
    (2027, 10): 29,  # Sunday 31st
}


def _last_weekday(year: int, month: int) -> date:
    """Independently of the trigger: step back from the last day over Saturday and Sunday."""
    day = date(year, month, calendar.monthrange(year, month)[1])
    while day.weekday() >= 5:  # date.weekday(): 5 Saturday, 6 Sunday
        day = day.replace(day=day.day - 1)
    return day


MONTHS = [(year, month) for year in (2026, 2027) for month in range(1, 13)]


def test_lw_is_the_last_weekday_of_every_month_of_2026_and_2027() -> None:
    slots = next_slots(cron("0 9 LW * *"), "2025-12-31T12:00:00Z", 24)
    expected = [f"{_last_weekday(y, m).isoformat()}T09:00:00Z" for y, m in MONTHS]
    assert slots == expected
    for (year, month), day in WEEKEND_ENDS.items():
        assert f"{year}-{month:02d}-{day:02d}T09:00:00Z" in slots
    # The other 16 months end on a weekday: LW is their last day.
    for year, month in MONTHS:
        if (year, month) not in WEEKEND_ENDS:
            assert _last_weekday(year, month).day == calendar.monthrange(year, month)[1]


def test_lw_in_a_zone_and_lower_case() -> None:
    assert next_slots(cron("30 18 lw * *", "Europe/Berlin"), "2026-10-01T00:00:00Z", 2) == [
        "2026-10-30T17:30:00Z",  # Friday 30 October, still summer time (UTC+2)
        "2026-11-30T17:30:00Z",  # Monday 30 November, winter time (UTC+1)
    ]


def test_lw_with_a_restricted_day_of_week_is_either_like_other_day_rules() -> None:
    # cronie's rule, as for every day-of-month item: both fields restricted -> either matches.
    slots = next_slots(cron("0 9 LW * MON"), "2026-02-01T00:00:00Z", 6)
    assert slots == [
        "2026-02-02T09:00:00Z",
        "2026-02-09T09:00:00Z",
        "2026-02-16T09:00:00Z",
        "2026-02-23T09:00:00Z",
        "2026-02-27T09:00:00Z",  # the last weekday, a Friday
        "2026-03-02T09:00:00Z",
    ]


def test_lw_with_a_day_of_week_written_from_star_needs_both() -> None:
    # "*/2" is Sunday, Tuesday, Thursday, Saturday and starts with "*": both must match, so
    # only months whose last weekday is a Tuesday or a Thursday.
    slots = next_slots(cron("0 9 LW * */2"), "2026-01-01T00:00:00Z", 4)
    assert slots == [
        "2026-03-31T09:00:00Z",  # Tuesday
        "2026-04-30T09:00:00Z",  # Thursday
        "2026-06-30T09:00:00Z",  # Tuesday
        "2026-12-31T09:00:00Z",  # Thursday
    ]


def test_lw_in_a_list_with_days_and_l() -> None:
    assert next_slots(cron("0 9 15,LW * *"), "2026-01-01T00:00:00Z", 4) == [
        "2026-01-15T09:00:00Z",
        "2026-01-30T09:00:00Z",
        "2026-02-15T09:00:00Z",
        "2026-02-27T09:00:00Z",
    ]
    # January 2026: LW is Friday the 30th, L Saturday the 31st.
    assert next_slots(cron("0 9 L,LW 1 *"), "2026-01-01T00:00:00Z", 2) == [
        "2026-01-30T09:00:00Z",
        "2026-01-31T09:00:00Z",
    ]


def test_lw_backwards_and_counted() -> None:
    trigger = cron("0 9 LW * *", "America/New_York")
    after, until = "2026-01-01T00:00:00+00:00", "2027-12-31T23:59:59+00:00"
    assert count_slots(trigger, utc(after), utc(until)) == 24
    assert trigger.previous_slot(utc("2026-05-31T12:00:00-04:00")) == utc(
        "2026-05-29T09:00:00-04:00"
    )


@pytest.mark.parametrize("text", ["0 0 WL * *", "0 0 LWW * *", "0 0 LW/2 * *", "0 0 1-LW * *"])
def test_other_spellings_are_errors(text: str) -> None:
    item = text.split()[2]
    with pytest.raises(InvalidSchedule) as caught:
        compile_cron(text, "job")
    assert str(caught.value) == f'day-of-month field: cannot read "{item}"'


def test_lw_can_never_fire_with_a_weekend_only_day_of_week_from_star() -> None:
    # "*/6" is Sunday and Saturday: LW is never either, and both must match.
    with pytest.raises(InvalidSchedule) as caught:
        compile_cron("0 0 LW * */6", "job")
    assert str(caught.value) == "expression never fires"
