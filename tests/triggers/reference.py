"""Brute force to check the triggers' and the policy's shortcuts against: walk ``next_slot``.

``decide_by_walking`` is the catch-up policy as ``scheduler.policy.decide`` computed it before
issue 8 (every due slot listed, missed ranges found by walking), kept so the tests can compare
answers and ``bench/catchup.py`` can time both.
"""

from __future__ import annotations

from scheduler.clock import utc
from scheduler.jobspec import JobSpec
from scheduler.policy import ON_TIME_S, Decision, slots_of
from scheduler.records import MissedRange
from scheduler.triggers import EveryTrigger, Trigger


def walk_s(trigger: Trigger, after_s: int, until_s: int) -> list[int]:
    """Every slot in (after_s, until_s], each found by next_slot from the one before."""
    step = slots_of(trigger)
    slots = []
    slot = step(after_s)
    while slot is not None and slot <= until_s:
        slots.append(slot)
        slot = step(slot)
    return slots


def decide_by_walking(
    job: JobSpec, after_s: int, now_s: int, *, as_before: bool = False
) -> Decision:
    """What `decide` answers, found by walking every slot in (after_s, now_s].

    ``as_before``: cost what the old code cost, for the bench: an ``every`` job's missed range
    by arithmetic (walking a year of ``every = "1s"`` would take a minute), any other one walked
    twice (once to count it, once to find its last slot). The tests leave it off so that
    nothing but ``next_slot`` is trusted.
    """
    step = slots_of(job.trigger)
    grace_s = int(job.misfire_grace.total_seconds())
    cutoff_s = now_s - grace_s - 1
    missed: list[MissedRange] = []
    if cutoff_s > after_s:
        stale = _span_by_walking(job.trigger, after_s, cutoff_s, as_before)
        if stale is not None:
            missed.append(MissedRange(job.name, *stale, "misfire_grace"))
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
        fire = [s for s in due if now_s - s <= ON_TIME_S]
    skipped = due[: len(due) - len(fire)] if job.catchup != "all" else []
    if skipped:
        missed.append(
            MissedRange(job.name, skipped[0], skipped[-1], len(skipped), f"catchup={job.catchup}")
        )
    return Decision(tuple(fire), tuple(missed), slot)


def _span_by_walking(
    trigger: Trigger, after_s: int, until_s: int, as_before: bool
) -> tuple[int, int, int] | None:
    if as_before and isinstance(trigger, EveryTrigger):
        count = trigger.count_slots_between(utc(after_s), utc(until_s))
        first = slots_of(trigger)(after_s)
        if first is None or not count:
            return None
        return first, first + (count - 1) * trigger.every_s, count
    if as_before:
        walk_s(trigger, after_s, until_s)  # the old count_slots, then the old search for the last
    first_s = last_s = None
    count = 0
    step = slots_of(trigger)
    slot = step(after_s)
    while slot is not None and slot <= until_s:
        first_s = slot if first_s is None else first_s
        last_s, count = slot, count + 1
        slot = step(slot)
    if first_s is None or last_s is None:
        return None
    return first_s, last_s, count
