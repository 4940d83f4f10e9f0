"""``at``: one slot at one instant."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from scheduler.triggers.instants import format_utc, from_epoch_s, schedule_epoch_s, to_epoch_s


@dataclass(frozen=True, slots=True)
class AtTrigger:
    """Fires once, at ``at`` (aware, a whole second; stored in UTC)."""

    at: datetime
    _at_s: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        at_s = schedule_epoch_s(self.at, "at")
        object.__setattr__(self, "at", from_epoch_s(at_s))
        object.__setattr__(self, "_at_s", at_s)

    def next_slot(self, after: datetime) -> datetime | None:
        """``at`` if it is strictly after ``after``, else None."""
        return self.at if to_epoch_s(after) < self._at_s else None

    def previous_slot(self, at_or_before: datetime) -> datetime | None:
        """``at`` if it is at or before ``at_or_before``, else None."""
        return self.at if self._at_s <= to_epoch_s(at_or_before) else None

    def count_slots_between(self, after: datetime, until: datetime) -> int:
        """1 if ``at`` lies in ``(after, until]``, else 0."""
        return int(to_epoch_s(after) < self._at_s <= to_epoch_s(until))

    def describe(self) -> str:
        """E.g. ``at 2026-12-01T08:00:00Z``."""
        return f"at {format_utc(self._at_s)}"
