"""``CronTrigger``: a cron expression read on the wall clock of one time zone.

DST, as README.md's "Jobs and schedules" fixes it:

- a *fixed-time* job (minute and hour fields not starting with ``*``) whose local time falls
  in a spring-forward gap fires once, at the first instant after the gap; in a fall-back
  overlap it fires only in the first pass;
- a *wildcard* job has no slots in a gap and fires in both passes of an overlap.

The zone is walked as constant-offset periods (``zone.py``). Within one period wall time and
UTC differ by a constant, so the next slot is the first matching wall time in the period's
range, minus the offset. A wildcard job uses each period's whole wall range, which covers the
repeated hour twice and the skipped hour never; a fixed-time job skips a period's wall times
already covered by the period before (the second pass) and picks up a gap at its start.

``previous_slot`` and ``count_slots_between`` read the same periods with the same rule
(``_low_wall_s``), backwards and by counting, so they agree with walking ``next_slot``.
"""

from __future__ import annotations

from calendar import timegm
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from scheduler.triggers.cron.expression import CronExpression
from scheduler.triggers.cron.zone import OffsetPeriod, period_at
from scheduler.triggers.instants import from_epoch_s, to_epoch_s

_FIRST_S = timegm((2, 1, 1, 0, 0, 0))  # stay clear of datetime.min when probing offsets
_LAST_S = timegm((9999, 12, 30, 0, 0, 0))  # and of datetime.max when adding offsets
# Any day pattern that matches at all matches within every 400-year Gregorian cycle, so a
# longer search only goes on for wildcard jobs whose days all fall in DST gaps (such as
# "*/5 2 * 3 SUN#2" in New York): those get None instead of a walk to the year 9999.
_SEARCH_S = 401 * 366 * 86_400


@dataclass(frozen=True, slots=True)
class CronTrigger:
    """Fires whenever the wall clock of ``tz`` matches ``expression`` (see module docs)."""

    expression: CronExpression
    tz: ZoneInfo

    def next_slot(self, after: datetime) -> datetime | None:
        """The first slot strictly after ``after``, in UTC; None if there is none."""
        from_s = max(to_epoch_s(after) + 1, _FIRST_S)
        give_up_s = min(from_s + _SEARCH_S, _LAST_S)
        while from_s < give_up_s:
            period = period_at(self.tz, from_s)
            slot_s = self._first_slot_in(period, from_s)
            if slot_s is not None:
                return from_epoch_s(slot_s) if slot_s < _LAST_S else None
            from_s = period.end_s
        return None

    def previous_slot(self, at_or_before: datetime) -> datetime | None:
        """The last slot at or before ``at_or_before``, in UTC; None if there is none.

        The mirror of ``next_slot``, period by period backwards, with the same 401-year limit.
        """
        to_s = min(to_epoch_s(at_or_before) + 1, _LAST_S)  # slots in [period start, to_s)
        give_up_s = max(to_s - _SEARCH_S, _FIRST_S)
        while to_s > give_up_s:
            period = period_at(self.tz, to_s - 1)
            slot_s = self._last_slot_in(period, max(period.start_s, _FIRST_S), to_s)
            if slot_s is not None:
                return from_epoch_s(slot_s)
            to_s = period.start_s
        return None

    def count_slots_between(self, after: datetime, until: datetime) -> int:
        """How many slots lie in ``(after, until]``, by arithmetic (see ``count_matches``).

        Costs one step per constant-offset period (about three a year in a DST zone) and per
        month inside it, whatever the number of slots: a year of ``* * * * * *`` counts as fast
        as a year of ``@daily``.
        """
        from_s = max(to_epoch_s(after) + 1, _FIRST_S)
        to_s = min(to_epoch_s(until) + 1, _LAST_S)  # slots in [from_s, to_s)
        count = 0
        while from_s < to_s:
            period = period_at(self.tz, from_s)
            count += self._count_in(period, from_s, min(to_s, period.end_s))
            from_s = period.end_s
        return count

    def _low_wall_s(self, period: OffsetPeriod, from_s: int) -> tuple[int, bool]:
        """Where the wall times of ``period`` fire from, given slots from ``from_s``; and
        whether the instant ``from_s`` itself is a slot for a time skipped by a gap."""
        low_wall_s = from_s + period.offset_s
        if self.expression.wildcard:
            return low_wall_s, False
        gap_slot = from_s == period.start_s and self._fires_in_gap_before(period)
        # After a fall-back, wall times the previous period already showed are not fired again.
        return max(low_wall_s, period.start_s + period.offset_before_s), gap_slot

    def _last_slot_in(self, period: OffsetPeriod, from_s: int, to_s: int) -> int | None:
        """The last slot in ``[from_s, to_s)``, which lies inside ``period``."""
        low_wall_s, gap_slot = self._low_wall_s(period, from_s)
        wall_s = self.expression.last_match(low_wall_s, to_s + period.offset_s)
        if wall_s is not None:
            return wall_s - period.offset_s
        return from_s if gap_slot else None

    def _count_in(self, period: OffsetPeriod, from_s: int, to_s: int) -> int:
        """How many slots lie in ``[from_s, to_s)``, which lies inside ``period``."""
        low_wall_s, gap_slot = self._low_wall_s(period, from_s)
        if gap_slot:
            # The gap's slot is the instant from_s, which a wall time on it would name again.
            low_wall_s = from_s + period.offset_s + 1
        return int(gap_slot) + self.expression.count_matches(low_wall_s, to_s + period.offset_s)

    def _first_slot_in(self, period: OffsetPeriod, from_s: int) -> int | None:
        """The first slot in ``[from_s, period.end_s)``, which lies inside ``period``."""
        low_wall_s, gap_slot = self._low_wall_s(period, from_s)
        if gap_slot:
            return from_s
        wall_s = self.expression.first_match(low_wall_s, period.end_s + period.offset_s)
        return None if wall_s is None else wall_s - period.offset_s

    def _fires_in_gap_before(self, period: OffsetPeriod) -> bool:
        """Whether a wall time skipped by a spring-forward at ``period.start_s`` matches.

        All such wall times fire once, at the instant the clocks jump.
        """
        gap_start_wall_s = period.start_s + period.offset_before_s
        gap_end_wall_s = period.start_s + period.offset_s
        if gap_end_wall_s <= gap_start_wall_s:
            return False
        return self.expression.first_match(gap_start_wall_s, gap_end_wall_s) is not None

    def describe(self) -> str:
        """E.g. ``cron "*/5 * * * *" (Europe/Berlin)``."""
        return f'cron "{self.expression.text}" ({self.tz.key})'
