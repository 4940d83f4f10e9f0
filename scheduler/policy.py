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
from scheduler.triggers import EveryTrigger, Trigger, count_slots, iter_slots

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
    """
    step = next_slot_s or slots_of(job.trigger)
    grace_s = int(job.misfire_grace.total_seconds())
    cutoff_s = now_s - grace_s - 1  # slots at or before this are later than the grace
    missed: list[MissedRange] = []
    if cutoff_s > after_s:
        stale = _span(job.trigger, after_s, cutoff_s)
        if stale is not None:
            first, last, count = stale
            missed.append(MissedRange(job.name, first, last, count, "misfire_grace"))
        after_s = cutoff_s
    due = []
    slot = step(after_s)
    while slot is not None and slot <= now_s:
        due.append(slot)
        slot = step(slot)
    if not due:
        return Decision((), tuple(missed), slot)
    if job.catchup == "all":
        fire = due
    elif job.catchup == "latest":
        fire = due[-1:]
    else:
        fire = [slot for slot in due if now_s - slot <= ON_TIME_S]
    skipped = due[: len(due) - len(fire)] if job.catchup != "all" else []
    if skipped:
        missed.append(
            MissedRange(job.name, skipped[0], skipped[-1], len(skipped), f"catchup={job.catchup}")
        )
    return Decision(tuple(fire), tuple(missed), slot)


def _span(trigger: Trigger, after_s: int, until_s: int) -> tuple[int, int, int] | None:
    """(first, last, count) of the slots in (after_s, until_s], without listing them."""
    first = trigger.next_slot(utc(after_s))
    if first is None or _seconds(first) > until_s:
        return None
    count = count_slots(trigger, utc(after_s), utc(until_s))
    if isinstance(trigger, EveryTrigger):
        return _seconds(first), _seconds(first) + (count - 1) * trigger.every_s, count
    last = first
    for last in iter_slots(trigger, first, utc(until_s)):  # noqa: B007 (we want the last one)
        pass
    return _seconds(first), _seconds(last), count


def _seconds(instant: datetime) -> int:
    return int(instant.timestamp())
