"""The trigger interface and the helpers every trigger shares.

A trigger is pure time math: given an instant it names the next slot (or the previous one),
with no I/O, no clock and no state that changes. Slots are aware UTC datetimes in whole seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Protocol, runtime_checkable


class Trigger(Protocol):
    """Anything that can name the slots of one schedule."""

    def next_slot(self, after: datetime) -> datetime | None:
        """The first slot strictly after ``after`` (aware, any zone), in UTC; None if none."""
        ...

    def previous_slot(self, at_or_before: datetime) -> datetime | None:
        """The last slot at or before ``at_or_before`` (aware, any zone), in UTC; None if none.

        Exactly the last slot that walking ``next_slot`` would reach, found without the walk.
        """
        ...

    def describe(self) -> str:
        """Short human text for logs and ``jobs list``, e.g. ``every 30s from …``."""
        ...


@runtime_checkable
class CountableTrigger(Trigger, Protocol):
    """A trigger that can count its slots without walking them (``every``: O(1) arithmetic,
    ``cron``: O(periods + months), see ``CronTrigger.count_slots_between``)."""

    def count_slots_between(self, after: datetime, until: datetime) -> int:
        """How many slots lie in ``(after, until]``."""
        ...


def iter_slots(trigger: Trigger, after: datetime, until: datetime) -> Iterator[datetime]:
    """Every slot in ``(after, until]``, oldest first."""
    slot = trigger.next_slot(after)
    while slot is not None and slot <= until:
        yield slot
        slot = trigger.next_slot(slot)


def count_slots(trigger: Trigger, after: datetime, until: datetime) -> int:
    """How many slots lie in ``(after, until]``; fast when the trigger knows a shortcut."""
    if until <= after:
        return 0
    if isinstance(trigger, CountableTrigger):
        return trigger.count_slots_between(after, until)
    return sum(1 for _ in iter_slots(trigger, after, until))
