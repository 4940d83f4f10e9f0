"""What a leader does with due slots: fire, catch up, or record as missed. Pure functions.

Given a job, the newest slot already handled (the watermark) and "now", decide which slots in
(watermark, now] to fire and which to record as missed ranges:
- a slot older than ``misfire_grace`` is missed (reason ``misfire_grace``);
- of the rest, ``catchup = "all"`` fires every one, ``"latest"`` only the newest, and
  ``"none"`` only those at most ``ON_TIME_S`` late (so a new leader skips what it missed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from scheduler.clock import utc
from scheduler.jobspec import JobSpec
from scheduler.records import MissedRange
from scheduler.triggers import Trigger, count_slots

# A slot enqueued this late still counts as on time: a leader's normal lateness is milliseconds.
ON_TIME_S = 1


# The next slot strictly after an instant, both in epoch seconds (None: no more slots).
NextSlot = Callable[[int], int | None]


@dataclass(frozen=True, slots=True)
class Decision:
    fire: tuple[int, ...]
    missed: tuple[MissedRange, ...]
    next_s: int | None  # the job's first slot after now: where its agenda goes on


def slots_of(trigger: Trigger) -> NextSlot:
    """`trigger.next_slot` in epoch seconds."""

    def next_slot_s(after_s: int) -> int | None:
        slot = trigger.next_slot(utc(after_s))
        return None if slot is None else _seconds(slot)

    return next_slot_s


def decide(job: JobSpec, after_s: int, now_s: int, next_slot_s: NextSlot | None = None) -> Decision:
    """Slots of `job` in (after_s, now_s]: which to fire now, which to record as missed.

    `next_slot_s` is the job's trigger in epoch seconds (the engine passes one that jobs with
    identical schedules share); by default the job's own trigger.

    Costs the same however long the job was down: a missed range is bounded by the trigger's
    `previous_slot` and counted by its arithmetic, and only slots that fire are listed (those
    within the grace for "all", the newest for "latest", the on-time ones for "none"). A tick
    with one slot due asks `next_slot_s` twice and nothing else, as it always did.
    """
    trigger = job.trigger
    step = next_slot_s or slots_of(trigger)
    grace_s = int(job.misfire_grace.total_seconds())
    cutoff_s = now_s - grace_s - 1  # slots at or before this are later than the grace
    missed: list[MissedRange] = []
    first_s = step(after_s)
    if cutoff_s > after_s:
        stale = _span(trigger, first_s, after_s, cutoff_s)
        if stale is not None:
            missed.append(MissedRange(job.name, *stale, "misfire_grace"))
            first_s = step(cutoff_s)
        after_s = cutoff_s
    if first_s is None or first_s > now_s:
        return Decision((), tuple(missed), first_s)
    if job.catchup == "all":
        fire, next_s = _walk(step, first_s, now_s)
        return Decision(fire, tuple(missed), next_s)
    newest_s, next_s = first_s, step(first_s)
    if next_s is not None and next_s <= now_s:  # more than one due: find the newest
        last_s = _last_slot_s(trigger, first_s, now_s)
        newest_s = next_s if last_s is None else last_s  # None: see _span
        next_s = step(newest_s)
    if job.catchup == "latest":
        fire = (newest_s,)
    elif newest_s == first_s:
        fire = (first_s,) if now_s - first_s <= ON_TIME_S else ()
    else:
        fire, _ = _walk(step, step(max(after_s, now_s - ON_TIME_S - 1)), now_s)
    if fire[:1] != (first_s,):  # what does not fire is everything due before what does
        if newest_s == first_s:  # one slot due, and too late: no need to search or count
            skipped: tuple[int, int, int] | None = (first_s, first_s, 1)
        else:
            skipped = _span(trigger, first_s, after_s, fire[0] - 1 if fire else newest_s)
        if skipped is not None:
            missed.append(MissedRange(job.name, *skipped, f"catchup={job.catchup}"))
    return Decision(fire, tuple(missed), next_s)


def _walk(step: NextSlot, slot: int | None, until_s: int) -> tuple[tuple[int, ...], int | None]:
    """The slots from `slot` on up to until_s, listed; and the first slot after them."""
    slots = []
    while slot is not None and slot <= until_s:
        slots.append(slot)
        slot = step(slot)
    return tuple(slots), slot


def _last_slot_s(trigger: Trigger, after_s: int, until_s: int) -> int | None:
    """The newest slot in (after_s, until_s], or None."""
    slot = trigger.previous_slot(utc(until_s))
    return None if slot is None or _seconds(slot) <= after_s else _seconds(slot)


def _span(
    trigger: Trigger, first_s: int | None, after_s: int, until_s: int
) -> tuple[int, int, int] | None:
    """(first, last, count) of the slots in (after_s, until_s], without listing them.

    `first_s` is the first slot after after_s, known to the caller.
    """
    if first_s is None or first_s > until_s:
        return None
    last_s = _last_slot_s(trigger, after_s, until_s)
    if last_s is None:  # a cron gives up 401 years back, as walking forwards would from first_s
        last_s = first_s
    return first_s, last_s, count_slots(trigger, utc(after_s), utc(until_s))


def _seconds(instant: datetime) -> int:
    return int(instant.timestamp())
