"""A time zone as a sequence of constant-offset periods, found by probing ``zoneinfo``.

``zoneinfo`` answers "what is the offset at this instant" but not "when does it next change",
which DST handling needs. So each UTC year of a zone is probed once a day and every change is
narrowed to its exact second by bisection; the result is cached per (zone, year) and shared by
every job in that zone (about 1 ms per zone and year). Since 1900 no tzdata zone changes its
offset twice within 3.9 days, so a daily probe cannot miss a change undone before the next one.
"""

from __future__ import annotations

from bisect import bisect_right
from calendar import isleap, timegm
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import lru_cache
from time import gmtime

_PROBE_STEP_S = 86_400
_LAST_PROBE_S = timegm((9999, 12, 30, 0, 0, 0))  # later instants are past datetime.max locally


@dataclass(frozen=True, slots=True)
class OffsetPeriod:
    """UTC instants ``[start_s, end_s)`` during which the zone's UTC offset is ``offset_s``.

    ``offset_before_s`` is the offset just before ``start_s``: larger means the clocks went
    back at ``start_s`` (an overlap), smaller means they jumped forward (a gap). Periods are
    also cut at each UTC new year, where both offsets are equal.
    """

    start_s: int
    end_s: int
    offset_s: int
    offset_before_s: int


def offset_s_at(zone: tzinfo, epoch_s: int) -> int:
    """The zone's UTC offset in whole seconds at one instant."""
    offset = datetime.fromtimestamp(epoch_s, zone).utcoffset()
    if offset is None:
        raise ValueError(f"time zone {zone} has no UTC offset")
    return offset.days * 86_400 + offset.seconds


def period_at(zone: tzinfo, epoch_s: int) -> OffsetPeriod:
    """The constant-offset period that contains ``epoch_s``."""
    starts, periods = _year_periods(zone, gmtime(epoch_s).tm_year)
    return periods[bisect_right(starts, epoch_s) - 1]


def _first_change(zone: tzinfo, known_s: int, known_offset_s: int, changed_s: int) -> int:
    """The first second in ``(known_s, changed_s]`` whose offset is not ``known_offset_s``."""
    while changed_s - known_s > 1:
        middle_s = (known_s + changed_s) // 2
        if offset_s_at(zone, middle_s) == known_offset_s:
            known_s = middle_s
        else:
            changed_s = middle_s
    return changed_s


@lru_cache(maxsize=4096)
def _year_periods(zone: tzinfo, year: int) -> tuple[tuple[int, ...], tuple[OffsetPeriod, ...]]:
    year_start_s = timegm((year, 1, 1, 0, 0, 0))
    year_end_s = year_start_s + (366 if isleap(year) else 365) * 86_400  # valid in 9999 too
    offset_s = offset_s_at(zone, year_start_s)
    before_s = offset_s_at(zone, year_start_s - 1) if year > 1 else offset_s
    changes = [(year_start_s, offset_s, before_s)]  # (at, offset from then on, offset before)
    known_s, last_probe_s = year_start_s, min(year_end_s - 1, _LAST_PROBE_S)
    while known_s < last_probe_s:
        probe_s = min(known_s + _PROBE_STEP_S, last_probe_s)
        probe_offset_s = offset_s_at(zone, probe_s)
        while probe_offset_s != offset_s:
            at_s = _first_change(zone, known_s, offset_s, probe_s)
            changes.append((at_s, offset_s_at(zone, at_s), offset_s))
            known_s, offset_s = at_s, changes[-1][1]
        known_s = probe_s
    ends = [at_s for at_s, _, _ in changes[1:]] + [year_end_s]
    periods = tuple(
        OffsetPeriod(at_s, end_s, offset_s, before_s)
        for (at_s, offset_s, before_s), end_s in zip(changes, ends, strict=True)
    )
    return tuple(p.start_s for p in periods), periods
