"""``every``: a fixed interval anchored at a start instant.

Slots are ``start + k * every_s`` for whole k >= 0, computed in integer epoch seconds (never
floats, never "now"), so every node derives the same slots whenever it started.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from scheduler.errors import InvalidSchedule
from scheduler.triggers.instants import (
    LAST_EPOCH_S,
    format_utc,
    from_epoch_s,
    schedule_epoch_s,
    to_epoch_s,
)

_UNITS_S = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))


def format_duration(seconds: int) -> str:
    """``5400`` -> ``1h30m``: the same spelling the config accepts."""
    parts = []
    for unit, size_s in _UNITS_S:
        count, seconds = divmod(seconds, size_s)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


@dataclass(frozen=True, slots=True)
class EveryTrigger:
    """Fires every ``every_s`` seconds on the grid ``start + k * every_s`` (k >= 0).

    ``start`` is stored in UTC; it must be aware and a whole second.
    """

    every_s: int
    start: datetime
    _start_s: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.every_s, bool) or not isinstance(self.every_s, int):
            raise InvalidSchedule(f"every must be a whole number of seconds, got {self.every_s!r}")
        if self.every_s < 1:
            raise InvalidSchedule(f"every must be at least 1 second, got {self.every_s}")
        start_s = schedule_epoch_s(self.start, "start")
        object.__setattr__(self, "start", from_epoch_s(start_s))
        object.__setattr__(self, "_start_s", start_s)

    def next_slot(self, after: datetime) -> datetime | None:
        """The first grid point strictly after ``after``; None past the year 9999."""
        after_s = to_epoch_s(after)  # rounded down: a slot is > after iff it is > this
        if after_s < self._start_s:
            return self.start
        slot_s = self._start_s + ((after_s - self._start_s) // self.every_s + 1) * self.every_s
        return from_epoch_s(slot_s) if slot_s <= LAST_EPOCH_S else None

    def previous_slot(self, at_or_before: datetime) -> datetime | None:
        """The last grid point at or before ``at_or_before``; None before ``start``."""
        at_s = min(to_epoch_s(at_or_before), LAST_EPOCH_S)  # next_slot stops at the year 9999
        if at_s < self._start_s:
            return None
        return from_epoch_s(at_s - (at_s - self._start_s) % self.every_s)

    def count_slots_between(self, after: datetime, until: datetime) -> int:
        """How many grid points lie in ``(after, until]``, by arithmetic."""
        return max(0, self._count_up_to(to_epoch_s(until)) - self._count_up_to(to_epoch_s(after)))

    def _count_up_to(self, epoch_s: int) -> int:
        """How many grid points are <= ``epoch_s``."""
        if epoch_s < self._start_s:
            return 0
        return (epoch_s - self._start_s) // self.every_s + 1

    def describe(self) -> str:
        """E.g. ``every 30s from 2026-01-01T00:00:00Z``."""
        return f"every {format_duration(self.every_s)} from {format_utc(self._start_s)}"
