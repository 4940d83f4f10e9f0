"""The leader's agenda: a heap of (next slot, job). Pure: no I/O and no clock of its own.

The node asks it what is due at a given instant and when the next slot is; the policy decides
per job what to fire and what to record as missed. Work per tick is O(log N + due).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import timedelta

from scheduler.jobspec import JobSpec
from scheduler.policy import Decision, NextSlot, decide, slots_of
from scheduler.records import MissedRange
from scheduler.triggers import Trigger


@dataclass(slots=True)
class Due:
    """What became due in one tick: fires in slot order, and missed ranges."""

    fires: list[tuple[JobSpec, int]] = field(default_factory=list)
    missed: list[MissedRange] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fires or self.missed)


class Engine:
    def __init__(self, jobs: Mapping[str, JobSpec]) -> None:
        self.jobs = dict(jobs)
        self.watermarks: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []

    def load(self, watermarks: Mapping[str, int]) -> None:
        """Start from these watermarks (newest slot handled per job); rebuilds the heap."""
        self.watermarks = {name: watermarks[name] for name in self.jobs if name in watermarks}
        shared: dict[tuple[Trigger, int], int | None] = {}
        heap = []
        for name, mark in self.watermarks.items():
            slot = _shared_steps(self.jobs[name].trigger, shared)(mark)
            if slot is not None:
                heap.append((slot, name))
        heapq.heapify(heap)
        self._heap = heap

    def replace_jobs(self, jobs: Mapping[str, JobSpec], new_watermarks: Mapping[str, int]) -> None:
        """A reloaded config: keep the watermarks of jobs that stay, adopt those of new ones."""
        kept = {name: mark for name, mark in self.watermarks.items() if name in jobs}
        self.jobs = dict(jobs)
        self.load({**kept, **new_watermarks})

    def reset(self, watermarks: Mapping[str, int]) -> None:
        """Take these jobs' watermarks as they are in Redis again (after slots of theirs were
        handed back or refused), so their next slots are decided afresh. O(N) in all jobs:
        for the rare cases, not for every tick."""
        names = {name for name in watermarks if name in self.jobs}
        self._heap = [entry for entry in self._heap if entry[1] not in names]
        shared: dict[tuple[Trigger, int], int | None] = {}
        for name in names:
            mark = self.watermarks[name] = watermarks[name]
            slot = _shared_steps(self.jobs[name].trigger, shared)(mark)
            if slot is not None:
                self._heap.append((slot, name))
        heapq.heapify(self._heap)

    def drop(self, names: set[str]) -> None:
        """Stop deciding for these jobs (quarantined) until `reset` brings them back."""
        self._heap = [entry for entry in self._heap if entry[1] not in names]
        heapq.heapify(self._heap)
        for name in names:
            self.watermarks.pop(name, None)

    def next_slot_s(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    def next_slots(self, names: AbstractSet[str]) -> dict[str, int]:
        """The next slot of each of `names` that has one, for /metrics. Read-only and safe from
        another thread: it walks a copy of the agenda (a job being decided at that very moment
        may be absent). O(N) in all jobs."""
        return {name: slot for slot, name in list(self._heap) if name in names}

    def take_due(self, now_s: int) -> Due:
        """Pop every job with a slot at or before `now_s` and decide what to do with it."""
        due = Due()
        fires, heap, jobs, watermarks = due.fires, self._heap, self.jobs, self.watermarks
        # Jobs with identical schedules share each "next slot after t" of this tick: a burst
        # of 10,000 jobs on one cron expression computes it once.
        shared: dict[tuple[Trigger, int], int | None] = {}
        # Jobs alike in schedule, watermark and policy get the same decision (bar names). The
        # trigger is keyed by identity (jobs renamed from one table share it) for a cheap hash.
        decided: dict[tuple[int, int, str, timedelta], tuple[Decision, bool]] = {}
        rescheduled: list[tuple[int, str]] = []
        # Fires come out in (slot, name) order as long as each job fires just its heap slot.
        in_order = True
        while heap and heap[0][0] <= now_s:
            slot_s, name = heapq.heappop(heap)
            job = jobs[name]
            mark = watermarks[name]
            alike = (id(job.trigger), mark, job.catchup, job.misfire_grace)
            known = decided.get(alike)
            if known is None:
                decision = decide(job, mark, now_s, _shared_steps(job.trigger, shared))
                only_slot = decision.fire == (slot_s,) and not decision.missed
                known = decided[alike] = (decision, only_slot)
            decision, just_this_slot = known
            if just_this_slot:
                fires.append((job, slot_s))
            else:
                in_order = False
                fires.extend((job, slot) for slot in decision.fire)
                due.missed.extend(replace(gap, job=name) for gap in decision.missed)
            watermarks[name] = now_s
            if decision.next_s is not None:
                rescheduled.append((decision.next_s, name))
        if len(rescheduled) > len(heap):
            heap.extend(rescheduled)  # most of the agenda was due: one O(due) heapify
            heapq.heapify(heap)
        else:
            for entry in rescheduled:
                heapq.heappush(heap, entry)
        if not in_order:
            fires.sort(key=lambda fire: (fire[1], fire[0].name))
        return due

    def upcoming(self, until_s: int) -> list[tuple[JobSpec, int]]:
        """The (job, slot) pairs due by `until_s` as things stand, without taking them."""
        if not self._heap or self._heap[0][0] > until_s:
            return []
        return [(self.jobs[name], slot) for slot, name in self._heap if slot <= until_s]


def _shared_steps(trigger: Trigger, shared: dict[tuple[Trigger, int], int | None]) -> NextSlot:
    compute = slots_of(trigger)

    def next_slot_s(after_s: int) -> int | None:
        key = (trigger, after_s)
        if key not in shared:
            shared[key] = compute(after_s)
        return shared[key]

    return next_slot_s
