"""Which calendar days a cron expression fires on: month, day-of-month and day-of-week.

Days are proleptic Gregorian ordinals (``date.toordinal()``); ``ordinal % 7`` is the cron
weekday (0 = Sunday), so no ``date`` object is needed to know a weekday.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import MAXYEAR, MINYEAR, date

from scheduler.triggers.cron.fields import DayOfMonth, DayOfWeek

# Leap years and weekdays repeat every 400 Gregorian years (146,097 days, a whole number of
# weeks): a rule that matches no day in one such cycle matches no day ever.
CALENDAR_CYCLE_DAYS = 146_097
_SATURDAY, _SUNDAY = 6, 0
_ALL_DAYS = frozenset(range(1, 32))
_ALL_WEEKDAYS = frozenset(range(7))
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def days_in_month(year: int, month: int) -> int:
    """28 to 31."""
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS_IN_MONTH[month - 1]


def nearest_weekday(day: int, weekday: int, length: int) -> int:
    """The Monday-Friday day nearest ``day`` (whose weekday is given), inside the month (Quartz W).

    Saturday moves back to Friday and Sunday forward to Monday, unless that would leave the
    month: a Saturday 1st becomes Monday the 3rd, a Sunday last day becomes Friday.
    """
    if weekday == _SATURDAY:
        return day - 1 if day > 1 else day + 2
    if weekday == _SUNDAY:
        return day + 1 if day < length else day - 2
    return day


@dataclass(frozen=True, slots=True)
class DayRule:
    """The day part of a cron expression.

    ``either`` is cronie's rule: when both day fields are restricted (neither text starts with
    ``*``) a day matches if either field matches; otherwise both must match.
    """

    months: tuple[int, ...]  # sorted
    day_of_month: DayOfMonth
    day_of_week: DayOfWeek
    either: bool
    _every_day: bool = field(init=False, repr=False)
    _only_day_of_month: bool = field(init=False, repr=False)
    _sorted_days: tuple[int, ...] = field(init=False, repr=False)
    # A month's matching days depend only on its length and the weekday of its 1st: at most
    # 28 shapes, each worked out once (lazily) for walking backwards and counting.
    _shapes: dict[int, tuple[int, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        dom_all = self.day_of_month.days == _ALL_DAYS  # 1-31 already covers L and W
        dow_all = self.day_of_week.weekdays == _ALL_WEEKDAYS
        every_day = (dom_all and dow_all) or (self.either and (dom_all or dow_all))
        object.__setattr__(self, "_every_day", every_day)
        # The common "0 0 1,15 * *": the day is found by bisecting, not by scanning.
        object.__setattr__(self, "_only_day_of_month", not self.either and dow_all)
        object.__setattr__(self, "_sorted_days", tuple(sorted(self.day_of_month.days)))

    def first_day(self, start: int, end: int) -> int | None:
        """The first matching day in ``[start, end]`` (ordinals), or None."""
        months = self.months
        first = date.fromordinal(start)
        year, month, day = first.year, first.month, first.day
        month_start = start - day + 1
        while month_start <= end:
            if month in months:
                found = self._first_in_month(day, days_in_month(year, month), month_start % 7)
                if found is not None:
                    ordinal = month_start + found - 1
                    return ordinal if ordinal <= end else None
            index = bisect_right(months, month)
            if index == len(months):
                year, index = year + 1, 0
                if year > MAXYEAR:
                    return None
            month, day = months[index], 1
            month_start = date(year, month, 1).toordinal()
        return None

    def last_day(self, start: int, end: int) -> int | None:
        """The last matching day in ``[start, end]`` (ordinals), or None."""
        months = self.months
        last = date.fromordinal(end)
        year, month, day = last.year, last.month, last.day
        while True:
            month_start = date(year, month, 1).toordinal()
            if month in months:
                shape = self._month_days(days_in_month(year, month), month_start % 7)
                index = bisect_right(shape, day)
                if index:
                    ordinal = month_start + shape[index - 1] - 1
                    return ordinal if ordinal >= start else None
            if month_start <= start:
                return None
            index = bisect_left(months, month) - 1
            if index < 0:
                year, index = year - 1, len(months) - 1
                if year < MINYEAR:
                    return None
            month, day = months[index], 31

    def count_days(self, start: int, end: int) -> int:
        """How many days in ``[start, end]`` (ordinals) match: O(months), not O(days)."""
        if end < start:
            return 0
        months, total = self.months, 0
        first = date.fromordinal(start)
        year, month, day = first.year, first.month, first.day
        month_start = start - day + 1
        while month_start <= end:
            length = days_in_month(year, month)
            if month in months:
                shape = self._month_days(length, month_start % 7)
                total += bisect_right(shape, end - month_start + 1) - bisect_left(shape, day)
            month_start += length
            year, month, day = (year + 1, 1, 1) if month == 12 else (year, month + 1, 1)
        return total

    def _month_days(self, length: int, weekday_of_1st: int) -> tuple[int, ...]:
        """The matching days (1-31) of a month in ``months`` with this shape, sorted."""
        key = length * 7 + weekday_of_1st
        days = self._shapes.get(key)
        if days is None:
            # Built from _first_in_month, so walking backwards and counting cannot disagree
            # with walking forwards.
            found = []
            day = self._first_in_month(1, length, weekday_of_1st)
            while day is not None:
                found.append(day)
                day = self._first_in_month(day + 1, length, weekday_of_1st)
            days = self._shapes[key] = tuple(found)
        return days

    def _first_in_month(self, from_day: int, length: int, weekday_of_1st: int) -> int | None:
        if from_day > length:
            return None
        if self._every_day:
            return from_day
        if self._only_day_of_month:
            return self._first_listed_day(from_day, length, weekday_of_1st)
        extra_days = self._special_days(length, weekday_of_1st)
        for day in range(from_day, length + 1):
            if self._matches(day, (weekday_of_1st + day - 1) % 7, length, extra_days):
                return day
        return None

    def _first_listed_day(self, from_day: int, length: int, weekday_of_1st: int) -> int | None:
        """The first day >= ``from_day`` named by day-of-month alone, or None."""
        days = self._sorted_days
        index = bisect_left(days, from_day)
        best = days[index] if index < len(days) and days[index] <= length else None
        for day in self._special_days(length, weekday_of_1st):
            if day >= from_day and (best is None or day < best):
                best = day
        return best

    def _special_days(self, length: int, weekday_of_1st: int) -> frozenset[int]:
        """This month's days named by ``L``, ``LW`` and ``nW``."""
        dom = self.day_of_month
        if not dom.last_day and not dom.last_weekday and not dom.nearest_weekdays:
            return frozenset()
        days = {length} if dom.last_day else set()
        if dom.last_weekday:
            # The weekday nearest the last day, never leaving the month, is the last weekday.
            days.add(nearest_weekday(length, (weekday_of_1st + length - 1) % 7, length))
        for day in dom.nearest_weekdays:
            if day <= length:  # like a plain day, 31W does not fire in 30-day months
                days.add(nearest_weekday(day, (weekday_of_1st + day - 1) % 7, length))
        return frozenset(days)

    def _matches(self, day: int, weekday: int, length: int, extra_days: frozenset[int]) -> bool:
        dom, dow = self.day_of_month, self.day_of_week
        dom_match = day in dom.days or day in extra_days
        dow_match = (
            weekday in dow.weekdays
            or (weekday in dow.last_weekdays and day > length - 7)
            or (weekday, (day + 6) // 7) in dow.nth_weekdays
        )
        return (dom_match or dow_match) if self.either else (dom_match and dow_match)
