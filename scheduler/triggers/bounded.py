"""A trigger limited in time and in count: `start`, `end` and `max_runs` of any schedule.

The slots of ``bounded(inner, start, end, max_runs)`` are the inner trigger's slots in
``[start, end]``, and of those at most the first ``max_runs`` counted from ``start``. A run is
a slot: nothing here depends on what was fired, so every node agrees on the last slot of a job
without asking Redis (a manual fire, ``scheduler trigger``, is not a slot and not a run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from scheduler.triggers.base import Trigger, count_slots
from scheduler.triggers.instants import (
    LAST_EPOCH_S,
    format_utc,
    from_epoch_s,
    schedule_epoch_s,
    to_epoch_s,
)

# A bisection over the slots of a countable trigger takes ~50 counts, walking takes max_runs
# next_slot calls: below this many runs walking is the cheaper way to the last one.
_WALK_MAX_RUNS = 64
_DAY_S = 86_400
_UNKNOWN = -2  # `_last_s` not computed yet (-1 would be a slot: 1969-12-31T23:59:59Z)


@dataclass(frozen=True, slots=True)
class BoundedTrigger:
    """The inner trigger's slots in ``[start, end]``, at most ``max_runs`` of them from
    ``start`` (``max_runs`` needs ``start``; the config's validator says so)."""

    inner: Trigger
    start: datetime | None = None
    end: datetime | None = None
    max_runs: int | None = None
    _start_s: int | None = field(init=False, repr=False, compare=False)
    _end_s: int | None = field(init=False, repr=False, compare=False)
    # The newest slot of the job (None: it has none), worked out once, on first use.
    _last_s: int | None = field(init=False, repr=False, compare=False, default=_UNKNOWN)

    def __post_init__(self) -> None:
        start_s = None if self.start is None else schedule_epoch_s(self.start, "start")
        end_s = None if self.end is None else schedule_epoch_s(self.end, "end")
        if self.max_runs is not None and (start_s is None or self.max_runs < 1):
            raise ValueError("max_runs needs a start and must be at least 1")
        object.__setattr__(self, "_start_s", start_s)
        object.__setattr__(self, "_end_s", end_s)
        object.__setattr__(self, "_last_s", _UNKNOWN)
        if start_s is not None:
            object.__setattr__(self, "start", from_epoch_s(start_s))
        if end_s is not None:
            object.__setattr__(self, "end", from_epoch_s(end_s))

    def next_slot(self, after: datetime) -> datetime | None:
        """The inner trigger's first slot after ``after`` that lies in the bounds."""
        start_s = self._start_s
        if start_s is not None and to_epoch_s(after) < start_s:
            after = from_epoch_s(start_s - 1)  # a slot at start itself counts
        slot = self.inner.next_slot(after)
        if slot is None:
            return None
        last_s = self._upper_s()
        return None if last_s is not None and to_epoch_s(slot) > last_s else slot

    def previous_slot(self, at_or_before: datetime) -> datetime | None:
        """The inner trigger's last slot at or before ``at_or_before`` within the bounds."""
        last_s = self._upper_s()
        if last_s is not None and to_epoch_s(at_or_before) > last_s:
            at_or_before = from_epoch_s(last_s)
        slot = self.inner.previous_slot(at_or_before)
        if slot is None or (self._start_s is not None and to_epoch_s(slot) < self._start_s):
            return None
        return slot

    def count_slots_between(self, after: datetime, until: datetime) -> int:
        """How many slots lie in ``(after, until]``: the inner trigger's count (arithmetic
        when it can count) over the part of that span inside the bounds."""
        after_s, until_s = to_epoch_s(after), to_epoch_s(until)
        if self._start_s is not None:
            after_s = max(after_s, self._start_s - 1)
        last_s = self._upper_s()
        if last_s is not None:
            until_s = min(until_s, last_s)
        if until_s <= after_s:
            return 0
        return count_slots(self.inner, from_epoch_s(after_s), from_epoch_s(until_s))

    def ends(self) -> bool:
        """Whether the slots stop at some point (an end or a count of runs)."""
        return self._end_s is not None or self.max_runs is not None

    def stopped_by_runs(self) -> bool:
        """Whether the last slot is the max_runs-th (not the end, nor the inner schedule's)."""
        if self.max_runs is None:
            return False
        self._upper_s()
        last_s = self._last_s
        return last_s is not None and (self._end_s is None or last_s <= self._end_s)

    def describe(self) -> str:
        """E.g. ``every 1h from … from 2026-12-01T00:00:00Z until 2027-01-01T00:00:00Z,
        at most 10 runs``."""
        parts = [self.inner.describe()]
        if self._start_s is not None:
            parts.append(f"from {format_utc(self._start_s)}")
        if self._end_s is not None:
            parts.append(f"until {format_utc(self._end_s)}")
        text = " ".join(parts)
        if self.max_runs is not None:
            text += f", at most {self.max_runs} run{'s' if self.max_runs != 1 else ''}"
        return text

    def _upper_s(self) -> int | None:
        """No slot is later than this (None: no upper bound)."""
        if self.max_runs is None:
            return self._end_s
        last_s = self._last_s
        if last_s == _UNKNOWN:
            last_s = self._nth_slot_s()
            object.__setattr__(self, "_last_s", last_s)  # the same on every call: a safe race
        if last_s is None:  # fewer than max_runs slots ever: the end (if any) bounds them
            return self._end_s
        return last_s if self._end_s is None else min(last_s, self._end_s)

    def _nth_slot_s(self) -> int | None:
        """The max_runs-th inner slot at or after start, or None if there are fewer."""
        assert self.max_runs is not None
        assert self._start_s is not None
        from_s = self._start_s - 1
        if self.max_runs > _WALK_MAX_RUNS and _countable(self.inner):
            return self._bisect_nth(from_s, self.max_runs)
        slot: datetime | None = from_epoch_s(from_s)
        for _ in range(self.max_runs):
            assert slot is not None
            slot = self.inner.next_slot(slot)
            if slot is None:
                return None
        assert slot is not None
        return to_epoch_s(slot)

    def _bisect_nth(self, from_s: int, runs: int) -> int | None:
        """The smallest t with `runs` slots in (from_s, t], by counting (no walk): a span
        doubled until it holds them, then halved. ~2 log2(distance / 1 day) counts."""
        after = from_epoch_s(from_s)
        low, span = from_s, _DAY_S
        while True:  # count(low) < runs
            high = min(from_s + span, LAST_EPOCH_S)
            if count_slots(self.inner, after, from_epoch_s(high)) >= runs:
                break
            if high == LAST_EPOCH_S:
                return None  # fewer slots than runs, ever
            low, span = high, span * 2
        while high - low > 1:
            middle = (low + high) // 2
            if count_slots(self.inner, after, from_epoch_s(middle)) >= runs:
                high = middle
            else:
                low = middle
        return high


def _countable(trigger: Trigger) -> bool:
    return hasattr(trigger, "count_slots_between")


def bounded(
    trigger: Trigger,
    start: datetime | None = None,
    end: datetime | None = None,
    max_runs: int | None = None,
) -> Trigger:
    """`trigger` limited to ``[start, end]`` and to its first ``max_runs`` slots from start;
    `trigger` itself when nothing limits it (so a job without bounds pays nothing)."""
    if start is None and end is None and max_runs is None:
        return trigger
    return BoundedTrigger(trigger, start, end, max_runs)


def unbounded(trigger: Trigger) -> Trigger:
    """The schedule inside any bounds: what `jobs list` describes in words."""
    return trigger.inner if isinstance(trigger, BoundedTrigger) else trigger
