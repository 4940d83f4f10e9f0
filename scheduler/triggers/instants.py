"""Whole-second UTC instants, the one representation of a slot.

Integer epoch seconds are the currency inside the trigger package: comparing two local
datetimes can be wrong around a DST fall-back (Python calls times that differ only in
``fold`` equal), while comparing integers never is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler.errors import InvalidSchedule

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_SECOND = timedelta(seconds=1)
LAST_EPOCH_S = (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - _EPOCH) // _ONE_SECOND


def to_epoch_s(moment: datetime) -> int:
    """Whole seconds since the Unix epoch, rounded down; ``moment`` must be time-zone aware."""
    if moment.utcoffset() is None:
        raise ValueError(f"expected a time-zone-aware datetime, got {moment.isoformat()}")
    return (moment - _EPOCH) // _ONE_SECOND


def from_epoch_s(epoch_s: int) -> datetime:
    """The aware UTC datetime ``epoch_s`` seconds after the Unix epoch."""
    return _EPOCH + timedelta(seconds=epoch_s)


def schedule_epoch_s(moment: datetime, what: str) -> int:
    """Epoch seconds of an instant written in a schedule (``at``, ``start``).

    Refuses naive datetimes and fractions of a second instead of guessing: slots are whole
    seconds, and a silently truncated instant would fire at a time nobody wrote.
    """
    if moment.utcoffset() is None:
        raise InvalidSchedule(f"{what} {moment.isoformat()} has no UTC offset")
    try:
        since_epoch = moment - _EPOCH
    except OverflowError:
        # Year 1 or 9999 with an offset: the instant itself has no UTC date in datetime's range.
        raise InvalidSchedule(
            f"{what} {moment.isoformat()} is outside the years 1-9999 in UTC"
        ) from None
    if since_epoch % _ONE_SECOND:
        raise InvalidSchedule(f"{what} {moment.isoformat()} is not a whole second")
    return to_epoch_s(moment)


def format_utc(epoch_s: int) -> str:
    """ISO 8601 in UTC with a ``Z``, as slots are written everywhere: ``2026-11-25T21:00:00Z``."""
    return from_epoch_s(epoch_s).isoformat().replace("+00:00", "Z")
