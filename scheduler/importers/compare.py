"""The first slot where two schedules part: ours against celery's crontab or croniter.

Walking every slot of a minute cron for a year is half a million steps at ~0.2 ms each in
celery or croniter, so the walk is in three parts that together see every kind of difference
a cron can have:

- the first ``WALK_SLOTS`` slots one by one: which times of day fire;
- then the first slot of each later day, up to ``HORIZON``: which days fire (times of day do
  not depend on the day, in either model, once the first part agreed);
- and every slot within a few hours of each change of the zone's UTC offset in that span:
  what a daylight-saving gap or overlap does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

NextSlot = Callable[[datetime], datetime | None]  # strictly after an aware instant, or None

WALK_SLOTS = 240
HORIZON = timedelta(days=366)
_DST_WINDOW = timedelta(hours=3)
_DST_WALK_SLOTS = 400


@dataclass(frozen=True, slots=True)
class Difference:
    """Where two schedules first part: each one's next slot after the last slot they share."""

    ours: datetime | None
    theirs: datetime | None
    near_offset_change: bool = False  # within a day of a daylight-saving change

    @property
    def at(self) -> datetime:
        slots = [s for s in (self.ours, self.theirs) if s is not None]
        return min(slots)


def first_difference(
    ours: NextSlot, theirs: NextSlot, since: datetime, zone: ZoneInfo
) -> Difference | None:
    """The earliest difference after ``since`` that the three walks find, or None."""
    until = since + HORIZON
    found = []
    walked = _walk(ours, theirs, since, until, WALK_SLOTS)
    if isinstance(walked, Difference):
        found.append(walked)
    elif walked is not None:
        by_day = _walk_days(ours, theirs, walked, until, zone)
        if by_day is not None:
            found.append(by_day)
    changes = _offset_changes(since, until, zone)
    for change in changes:
        near = _walk(ours, theirs, max(since, change - _DST_WINDOW), change + _DST_WINDOW,
                     _DST_WALK_SLOTS)  # fmt: skip
        if isinstance(near, Difference):
            found.append(near)
    if not found:
        return None
    first = min(found, key=lambda d: d.at)
    close = any(abs(first.at - change) <= timedelta(days=1) for change in changes)
    return Difference(first.ours, first.theirs, close)


def _walk(
    ours: NextSlot, theirs: NextSlot, after: datetime, until: datetime, limit: int
) -> Difference | datetime | None:
    """Slot by slot: a Difference, or the last shared slot (None: neither fires by ``until``)."""
    last = None
    for _ in range(limit):
        mine, other = ours(after), theirs(after)
        if mine != other:
            return _difference(mine, other, until)
        if mine is None or mine > until:
            return None
        last = after = mine
    return last


def _walk_days(
    ours: NextSlot, theirs: NextSlot, after: datetime, until: datetime, zone: ZoneInfo
) -> Difference | None:
    while True:
        after = _end_of_local_day(after, zone)
        mine, other = ours(after), theirs(after)
        if mine != other:
            return _difference(mine, other, until)
        if mine is None or mine > until:
            return None
        after = mine


def _difference(
    mine: datetime | None, other: datetime | None, until: datetime
) -> Difference | None:
    # Past the horizon neither answer is checked further: not a difference we can vouch for.
    if all(s is None or s > until for s in (mine, other)):
        return None
    return Difference(
        None if mine is None else mine.astimezone(UTC),
        None if other is None else other.astimezone(UTC),
    )


def _end_of_local_day(instant: datetime, zone: ZoneInfo) -> datetime:
    """The last whole second of ``instant``'s day on the wall clock of ``zone``, in UTC."""
    next_day = instant.astimezone(zone).date() + timedelta(days=1)
    midnight = datetime.combine(next_day, time(), tzinfo=zone).astimezone(UTC)
    return midnight - timedelta(seconds=1)


def _offset_changes(since: datetime, until: datetime, zone: ZoneInfo) -> list[datetime]:
    """When the zone's UTC offset changes in ``[since, until]``, to the second."""
    changes, step = [], timedelta(hours=12)
    low = since.astimezone(UTC)
    while low < until:
        high = low + step
        if high.astimezone(zone).utcoffset() != low.astimezone(zone).utcoffset():
            changes.append(_change_between(low, high, zone))
        low = high
    return changes


def _change_between(low: datetime, high: datetime, zone: ZoneInfo) -> datetime:
    before = low.astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == before:
            low = middle
        else:
            high = middle
    return high
