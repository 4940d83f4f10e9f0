"""``calendar``: every n days, weeks, months or years, at one local time, on a grid from a start.

``calendar = { weeks = 2, at = "09:00" }`` with ``start = 2026-01-05`` fires on 2026-01-05,
2026-01-19, ... at 09:00 on the job zone's wall clock. The grid is APScheduler 3's
``CalendarIntervalTrigger``'s (and is checked against it in the tests):

- days and weeks: day k is ``start + k * n`` days;
- months and years: month k is ``start``'s month plus ``k * n`` months, on ``start``'s day of
  the month; a month without that day (the 31st in April, 29 February in 2027) is skipped,
  never moved to another day: "the 31st" means the 31st (``L`` in a cron says "the last day").

Slot k is worked out directly from k, so ``next_slot`` and ``previous_slot`` cost a few slots'
arithmetic wherever they are asked, never a walk from ``start``; nothing reads a clock. A slot
before the ``start`` instant (``start`` 10:00, ``at`` 09:00) is not a slot.

DST, as for a fixed-time cron job (README.md, ``cron/trigger.py``), not as APScheduler: a
local time in a spring-forward gap fires at the first instant after the gap (APScheduler drops
that day, which for "every 2 weeks" would leave four weeks without a run); a time in a
fall-back overlap fires once, in the first pass (as APScheduler).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from math import gcd
from typing import Literal
from zoneinfo import ZoneInfo

from scheduler.errors import InvalidSchedule
from scheduler.triggers.cron.days import days_in_month
from scheduler.triggers.cron.zone import period_at
from scheduler.triggers.instants import LAST_EPOCH_S, from_epoch_s, schedule_epoch_s, to_epoch_s

Unit = Literal["days", "weeks", "months", "years"]
UNITS: tuple[Unit, ...] = ("days", "weeks", "months", "years")
# At most 100 years between slots, as for `every`.
MAX_COUNT: Mapping[Unit, int] = {"days": 36_525, "weeks": 5_218, "months": 1_200, "years": 100}
_SINGULAR: Mapping[Unit, str] = {"days": "day", "weeks": "week", "months": "month", "years": "year"}
_AT = re.compile(r"([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?")
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_LOCAL_EPOCH = datetime(1970, 1, 1)  # wall times count from its midnight
_LAST_ORDINAL = date.max.toordinal()
# Whether a day of the month exists repeats every 400 years (4,800 months).
_CYCLE_MONTHS = 4_800
_DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class CalendarTrigger:
    """Fires at ``at_s`` seconds after local midnight of each grid day (see module docs).

    ``start`` is aware and a whole second; its local date in ``tz`` is the grid's day 0.
    """

    unit: Unit
    count: int
    at_s: int
    start: datetime
    tz: ZoneInfo
    _start_s: int = field(init=False, repr=False, compare=False)
    _first_day: date = field(init=False, repr=False, compare=False)
    _step: int = field(init=False, repr=False, compare=False)  # days, or months

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise InvalidSchedule(f"unit must be one of {', '.join(UNITS)}, got {self.unit!r}")
        if not 1 <= self.count <= MAX_COUNT[self.unit]:
            raise InvalidSchedule(f"{self.unit} must be 1-{MAX_COUNT[self.unit]}, got {self.count}")
        if not 0 <= self.at_s < 86_400:
            raise InvalidSchedule(f"at must be within a day, got {self.at_s}s")
        start_s = schedule_epoch_s(self.start, "start")
        object.__setattr__(self, "start", from_epoch_s(start_s))
        object.__setattr__(self, "_start_s", start_s)
        try:
            first_day = datetime.fromtimestamp(start_s, self.tz).date()
        except (OverflowError, ValueError):
            raise InvalidSchedule(
                f"start {self.start.isoformat()} is past the years 1-9999 in {self.tz.key}"
            ) from None
        object.__setattr__(self, "_first_day", first_day)
        step = {"days": 1, "weeks": 7, "months": 1, "years": 12}[self.unit] * self.count
        object.__setattr__(self, "_step", step)

    @property
    def first_day(self) -> date:
        """Day 0 of the grid: ``start``'s date on the zone's wall clock."""
        return self._first_day

    @property
    def by_month(self) -> bool:
        """Whether the grid steps in months (months, years) rather than days (days, weeks)."""
        return self.unit in ("months", "years")

    def at_time(self) -> time:
        """``at`` as a time of day."""
        hours, rest = divmod(self.at_s, 3600)
        return time(hours, *divmod(rest, 60))

    def next_slot(self, after: datetime) -> datetime | None:
        """The first slot strictly after ``after``, in UTC; None if none (past the year 9999)."""
        found = self._first_index_from(max(to_epoch_s(after) + 1, self._start_s))
        return None if found is None else from_epoch_s(found[1])

    def previous_slot(self, at_or_before: datetime) -> datetime | None:
        """The last slot at or before ``at_or_before``, in UTC; None before the first slot."""
        found = self._last_index_to(min(to_epoch_s(at_or_before), LAST_EPOCH_S))
        return None if found is None else from_epoch_s(found[1])

    def count_slots_between(self, after: datetime, until: datetime) -> int:
        """How many slots lie in ``(after, until]``: the grid indices between the two ends."""
        first = self._first_index_from(max(to_epoch_s(after) + 1, self._start_s))
        last = self._last_index_to(min(to_epoch_s(until), LAST_EPOCH_S))
        if first is None or last is None or last[0] < first[0]:
            return 0
        return self._count_existing(first[0], last[0])

    def describe(self) -> str:
        """E.g. ``calendar "every 2 weeks at 09:00 from 2026-01-05" (Europe/Berlin)``."""
        return f'calendar "{self.text()}" ({self.tz.key})'

    def text(self) -> str:
        """The schedule as written: ``every 2 weeks at 09:00 from 2026-01-05``."""
        unit = _SINGULAR[self.unit] if self.count == 1 else f"{self.count} {self.unit}"
        local = from_epoch_s(self._start_s).astimezone(self.tz)
        midnight = local.time() == time(0) and local.utcoffset() == _midnight_offset(local)
        start = local.date().isoformat() if midnight else local.isoformat()
        return f"every {unit} at {format_at(self.at_s)} from {start}"

    # Slot k: its date (None where the month lacks the day), its wall time, then its instant.

    def _date_of(self, index: int) -> int | None:
        """The ordinal of grid day ``index``; None if it does not exist or is past 9999."""
        first = self._first_day
        if not self.by_month:
            ordinal = first.toordinal() + index * self._step
            return ordinal if ordinal <= _LAST_ORDINAL else None
        year, month0 = divmod(first.year * 12 + first.month - 1 + index * self._step, 12)
        if year > 9999 or first.day > days_in_month(year, month0 + 1):
            return None
        return date(year, month0 + 1, first.day).toordinal()

    def _wall_of(self, index: int) -> int | None:
        """Slot ``index`` as a local wall time (seconds since 1970-01-01 local), or None."""
        ordinal = self._date_of(index)
        return None if ordinal is None else (ordinal - _EPOCH_ORDINAL) * 86_400 + self.at_s

    def _floor_index(self, day: date) -> int:
        """The largest grid index whose day is at or before ``day`` (may be negative)."""
        first = self._first_day
        if not self.by_month:
            return (day.toordinal() - first.toordinal()) // self._step
        months = (day.year - first.year) * 12 + day.month - first.month
        if day.day < first.day:
            months -= 1
        return months // self._step

    def _first_index_from(self, from_s: int) -> tuple[int, int] | None:
        """The first (index, slot) with slot >= ``from_s``."""
        if from_s > LAST_EPOCH_S:
            return None
        # Three days back from the UTC date: the local date is within a day of it, and a
        # slot's instant within two of its wall date (a gap that skips a day, a fall-back
        # over midnight); slots grow with the index, so the first one found is the one.
        day = date.fromordinal(max(_EPOCH_ORDINAL + from_s // _DAY_S - 3, 1))
        index = max(self._floor_index(day), 0)
        while True:
            wall_s = self._wall_of(index)
            # No UTC offset reaches a day: a wall time a day before from_s is no candidate.
            if wall_s is not None and wall_s + _DAY_S >= from_s:
                slot_s = wall_to_instant_s(wall_s, self.tz)
                if slot_s > LAST_EPOCH_S:
                    return None
                if slot_s >= from_s:
                    return index, slot_s
            elif wall_s is None and self._past_the_end(index):
                return None
            index += 1

    def _last_index_to(self, to_s: int) -> tuple[int, int] | None:
        """The last (index, slot) with ``start`` <= slot <= ``to_s``."""
        if to_s < self._start_s:
            return None
        ordinal = min(_EPOCH_ORDINAL + to_s // _DAY_S + 3, _LAST_ORDINAL)  # as above
        index = self._floor_index(date.fromordinal(ordinal))
        while index >= 0:
            wall_s = self._wall_of(index)
            if wall_s is not None and wall_s - _DAY_S <= to_s:
                slot_s = wall_to_instant_s(wall_s, self.tz)
                if slot_s <= to_s:
                    return (index, slot_s) if slot_s >= self._start_s else None
            index -= 1
        return None

    def _past_the_end(self, index: int) -> bool:
        """Whether grid index ``index`` lies after the year 9999 (no later index exists)."""
        first = self._first_day
        if not self.by_month:
            return first.toordinal() + index * self._step > _LAST_ORDINAL
        return (first.year * 12 + first.month - 1 + index * self._step) // 12 > 9999

    def _count_existing(self, first: int, last: int) -> int:
        """How many grid indices in ``[first, last]`` have a day (all but skipped months)."""
        total = last - first + 1
        if not self.by_month or self._first_day.day <= 28:
            return total
        # Whether a month has the day repeats every 4,800 months: whole cycles counted once.
        cycle = _CYCLE_MONTHS // gcd(self._step, _CYCLE_MONTHS)
        whole = total // cycle
        per_cycle = (
            sum(self._date_of(i) is not None for i in range(first, first + cycle)) if whole else 0
        )
        return whole * per_cycle + sum(
            self._date_of(i) is not None for i in range(first + whole * cycle, last + 1)
        )


def wall_to_instant_s(wall_s: int, tz: ZoneInfo) -> int:
    """The instant a local wall time (seconds since 1970-01-01 00:00 local) names in ``tz``.

    The first pass of a fall-back overlap; for a time skipped by a spring-forward, the
    instant the clocks jumped (the first instant after the gap).
    """
    local = _LOCAL_EPOCH + timedelta(seconds=wall_s)
    # zoneinfo reads a wall time with the offset from before a change when fold=0 and from
    # after it when fold=1; away from changes both agree (integers: no aware arithmetic).
    first_s = wall_s - _seconds(tz.utcoffset(local))
    second_s = wall_s - _seconds(tz.utcoffset(local.replace(fold=1)))
    if first_s <= second_s:
        return first_s  # one instant, or the first of an overlap's two
    # A gap: fold=0 read the time with the offset from before the jump, which lands inside
    # the period that begins at the jump (zone.py also cuts periods at each UTC new year).
    period = period_at(tz, first_s)
    while period.offset_before_s == period.offset_s:  # at most one step: gaps last < a day
        period = period_at(tz, period.start_s - 1)
    return period.start_s


def _seconds(offset: timedelta | None) -> int:
    if offset is None:
        raise ValueError("time zone has no UTC offset")
    return offset.days * 86_400 + offset.seconds


def _midnight_offset(local: datetime) -> timedelta | None:
    """The offset local midnight of ``local``'s date is read with (the first pass)."""
    return datetime.combine(local.date(), time(0), local.tzinfo).utcoffset()


def format_at(at_s: int) -> str:
    """``32400`` -> ``09:00``; seconds only when there are some."""
    hours, rest = divmod(at_s, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}" + (f":{seconds:02d}" if seconds else "")


def read_at(value: object) -> int:
    """``at``: "HH:MM", "HH:MM:SS" or a TOML local time, as seconds after midnight."""
    if isinstance(value, time):
        if value.tzinfo is not None or value.microsecond:
            raise InvalidSchedule(f"at must be a local time of whole seconds, got {value}")
        return value.hour * 3600 + value.minute * 60 + value.second
    match = _AT.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidSchedule(f'at must be a time of day "HH:MM" or "HH:MM:SS", got {value!r}')
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _read_start(start: datetime | date, zone: ZoneInfo) -> datetime:
    """An aware instant: a date is its local midnight, a naive time is read in ``zone``."""
    if not isinstance(start, datetime):
        start = datetime.combine(start, time(0))
    if start.tzinfo is None:
        start = start.replace(tzinfo=zone)  # fold=0: the first pass, as everywhere
    try:
        return start.astimezone(UTC)
    except OverflowError:
        raise InvalidSchedule(f"start {start.isoformat()} is outside the years 1-9999") from None


def calendar_trigger(
    table: Mapping[str, object], start: datetime | date, zone: ZoneInfo
) -> tuple[CalendarTrigger, str]:
    """The trigger of ``calendar = { weeks = 2, at = "09:00" }`` from ``start``, and its text.

    Raises InvalidSchedule (a ValueError) with one line naming the problem.
    """
    if not isinstance(table, Mapping):
        raise InvalidSchedule(f'expected a table like {{ weeks = 2, at = "09:00" }}, got {table!r}')
    unknown = [key for key in table if key not in (*UNITS, "at")]
    if unknown:
        raise InvalidSchedule(
            f"unknown key {unknown[0]!r} (expected one of {', '.join(UNITS)} and at)"
        )
    units = [unit for unit in UNITS if unit in table]
    if len(units) != 1:
        found = ", ".join(units) if units else "none"
        raise InvalidSchedule(f"needs exactly one of {', '.join(UNITS)} (found {found})")
    unit = units[0]
    count = table[unit]
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidSchedule(f"{unit} must be a whole number >= 1, got {count!r}")
    if count > MAX_COUNT[unit]:
        raise InvalidSchedule(f"{unit} must be at most {MAX_COUNT[unit]} (100 years), got {count}")
    at_s = read_at(table.get("at", "00:00"))
    trigger = CalendarTrigger(unit, count, at_s, _read_start(start, zone), zone)
    return trigger, trigger.text()
