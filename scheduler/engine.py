"""The leader's agenda: a heap of (next send time, job). Pure: no I/O and no clock of its own.

The node asks it what is due at a given instant and when the next send is; the policy decides
per job what to fire and what to record as missed. Work per tick is O(log N + due).

A job's send time is its slot, or with `jitter` its slot plus the job's delay for that slot
(scheduler.jitter): the heap holds the send time and `_nominal` the slot, which is what fires
(task id, watermark, history). Lateness is judged from the send time: a jittered fire is not
late because of its jitter (catchup and misfire_grace see it as sent at its nominal slot).
A disabled job (`enabled = false`) is kept with its watermark but has no place on the heap;
enabled again by a reload, it starts from the "now" of the next tick, as a new job does, and
the slots of its disabled time are recorded as one missed range (reason "disabled").
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import timedelta

from scheduler.jitter import jitter_s
from scheduler.jobspec import JobSpec
from scheduler.policy import Decision, NextSlot, decide, slots_of
from scheduler.records import MissedRange
from scheduler.triggers import Trigger, count_slots
from scheduler.triggers.instants import from_epoch_s, to_epoch_s

# The reason of the missed range that holds the slots of a job's disabled time.
DISABLED = "disabled"


@dataclass(slots=True)
class Due:
    """What became due in one tick: fires in slot order, and missed ranges."""

    fires: list[tuple[JobSpec, int]] = field(default_factory=list)
    missed: list[MissedRange] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fires or self.missed)


class Engine:
    def __init__(self, jobs: Mapping[str, JobSpec]) -> None:
        self.jobs: dict[str, JobSpec] = {}
        self.watermarks: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []
        # Jobs with jitter, name -> its largest delay in whole seconds (jobs without: absent,
        # so they pay one falsy check per tick and nothing per fire).
        self._jitter_s: dict[str, int] = {}
        # The nominal slot of each jittered job's heap entry (whose first item is its send).
        self._nominal: dict[str, int] = {}
        self._disabled: set[str] = set()
        # Enabled again by a reload: their next tick restarts them from its "now".
        self._fresh: set[str] = set()
        self._use(jobs)

    def _use(self, jobs: Mapping[str, JobSpec]) -> None:
        self.jobs = dict(jobs)
        self._disabled = {name for name, job in jobs.items() if not job.enabled}
        # A jitter below 2 s has a window of one whole second: its delay is always 0.
        self._jitter_s = {
            name: int(job.jitter.total_seconds())
            for name, job in jobs.items()
            if job.jitter is not None and job.jitter.total_seconds() >= 2
        }

    def load(self, watermarks: Mapping[str, int]) -> None:
        """Start from these watermarks (newest slot handled per job); rebuilds the heap."""
        self.watermarks = {name: watermarks[name] for name in self.jobs if name in watermarks}
        self._nominal = {}
        shared: dict[tuple[Trigger, int], int | None] = {}
        heap = []
        for name, mark in self.watermarks.items():
            entry = self._entry(name, mark, shared)
            if entry is not None:
                heap.append(entry)
        heapq.heapify(heap)
        self._heap = heap

    def replace_jobs(self, jobs: Mapping[str, JobSpec], new_watermarks: Mapping[str, int]) -> None:
        """A reloaded config: keep the watermarks of jobs that stay, adopt those of new ones.
        A job enabled again starts from the next tick's "now": the slots of the time it was
        disabled are not fired: they become one missed range, "disabled"."""
        kept = {name: mark for name, mark in self.watermarks.items() if name in jobs}
        was_disabled = self._disabled
        self._use(jobs)
        self._fresh = {
            name
            for name in (was_disabled | self._fresh) - self._disabled
            if name in kept and name not in new_watermarks
        }
        self.load({**kept, **new_watermarks})
        if self._fresh:  # due at once (a watermark is past): the next tick gives them "now"
            fresh = self._fresh
            self._heap = [entry for entry in self._heap if entry[1] not in fresh]
            self._heap.extend((self.watermarks[name], name) for name in fresh)
            for name in fresh:
                self._nominal.pop(name, None)
            heapq.heapify(self._heap)

    def reset(self, watermarks: Mapping[str, int]) -> None:
        """Take these jobs' watermarks as they are in Redis again (after slots of theirs were
        handed back or refused), so their next slots are decided afresh. O(N) in all jobs:
        for the rare cases, not for every tick."""
        names = {name for name in watermarks if name in self.jobs}
        self._heap = [entry for entry in self._heap if entry[1] not in names]
        shared: dict[tuple[Trigger, int], int | None] = {}
        for name in names:
            self._nominal.pop(name, None)
            self._fresh.discard(name)
            mark = self.watermarks[name] = watermarks[name]
            entry = self._entry(name, mark, shared)
            if entry is not None:
                self._heap.append(entry)
        heapq.heapify(self._heap)

    def drop(self, names: set[str]) -> None:
        """Stop deciding for these jobs (quarantined) until `reset` brings them back."""
        self._heap = [entry for entry in self._heap if entry[1] not in names]
        heapq.heapify(self._heap)
        for name in names:
            self.watermarks.pop(name, None)
            self._nominal.pop(name, None)
            self._fresh.discard(name)

    def _entry(
        self, name: str, after_s: int, shared: dict[tuple[Trigger, int], int | None]
    ) -> tuple[int, str] | None:
        """The heap entry of `name`'s first slot after `after_s`: (send time, name)."""
        if name in self._disabled:
            return None
        step = _shared_steps(self.jobs[name].trigger, shared)
        slot_s = step(after_s)
        if slot_s is None:
            return None
        return self._send_entry(name, slot_s, step) if name in self._jitter_s else (slot_s, name)

    def _send_entry(self, name: str, slot_s: int, step: NextSlot) -> tuple[int, str]:
        """A jittered job's entry: sent at slot + its delay, the slot kept in `_nominal`."""
        self._nominal[name] = slot_s
        return slot_s + jitter_s(name, slot_s, self._jitter_s[name], step(slot_s)), name

    def next_slot_s(self) -> int | None:
        """When the next fire is to be sent (its slot, plus its jitter if it has one)."""
        return self._heap[0][0] if self._heap else None

    def next_slots(self, names: AbstractSet[str]) -> dict[str, int]:
        """The next (nominal) slot of each of `names` that has one, for /metrics. Read-only
        and safe from another thread: it walks a copy of the agenda (a job being decided at
        that very moment may be absent). O(N) in all jobs."""
        nominal = self._nominal
        return {
            name: nominal.get(name, send_s) for send_s, name in list(self._heap) if name in names
        }

    def take_due(self, now_s: int) -> Due:
        """Pop every job whose send time is at or before `now_s` and decide what to do with
        it; fires carry their nominal slots."""
        due = Due()
        fires, heap, jobs, watermarks = due.fires, self._heap, self.jobs, self.watermarks
        nominal, jittered, fresh = self._nominal, self._jitter_s, self._fresh
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
            if fresh and name in fresh:
                rescheduled.extend(self._restart(name, now_s, shared, due.missed))
                continue
            mark = watermarks[name]
            judged_s = now_s
            if nominal and name in nominal:
                # Judged as if sent at its slot: late only by how late its send is.
                send_s, slot_s = slot_s, nominal.pop(name)
                judged_s = now_s - (send_s - slot_s)
                in_order = in_order and send_s == slot_s
            if judged_s == now_s:
                alike = (id(job.trigger), mark, job.catchup, job.misfire_grace)
                known = decided.get(alike)
                if known is None:
                    decision = decide(job, mark, now_s, _shared_steps(job.trigger, shared))
                    only_slot = decision.fire == (slot_s,) and not decision.missed
                    known = decided[alike] = (decision, only_slot)
            else:
                decision = decide(job, mark, judged_s, _shared_steps(job.trigger, shared))
                known = (decision, decision.fire == (slot_s,) and not decision.missed)
            decision, just_this_slot = known
            if just_this_slot:
                fires.append((job, slot_s))
            else:
                in_order = False
                fires.extend((job, slot) for slot in decision.fire)
                due.missed.extend(replace(gap, job=name) for gap in decision.missed)
            watermarks[name] = judged_s
            if decision.next_s is None:
                continue
            if jittered and name in jittered:
                step = _shared_steps(job.trigger, shared)
                rescheduled.append(self._send_entry(name, decision.next_s, step))
            else:
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

    def _restart(
        self,
        name: str,
        now_s: int,
        shared: dict[tuple[Trigger, int], int | None],
        missed: list[MissedRange],
    ) -> list[tuple[int, str]]:
        """A job enabled again: from now on, as adoption starts a new job (nothing fires).
        The slots of the time it was disabled become one missed range (reason "disabled"),
        which the claim writes with the watermark: a leader that takes over before the job
        fires again reads that watermark, and fires none of them either."""
        self._fresh.discard(name)
        gap = disabled_range(name, self.jobs[name].trigger, self.watermarks[name], now_s)
        if gap is not None:
            missed.append(gap)
        self.watermarks[name] = now_s
        entry = self._entry(name, now_s, shared)
        return [] if entry is None else [entry]

    def upcoming(self, until_s: int) -> list[tuple[JobSpec, int]]:
        """The (job, nominal slot) pairs to be sent by `until_s` as things stand, without
        taking them."""
        if not self._heap or self._heap[0][0] > until_s:
            return []
        nominal, fresh = self._nominal, self._fresh
        return [
            (self.jobs[name], nominal.get(name, send_s))
            for send_s, name in self._heap
            if send_s <= until_s and name not in fresh
        ]


def disabled_range(name: str, trigger: Trigger, mark_s: int, now_s: int) -> MissedRange | None:
    """The slots after `mark_s` up to `now_s` as one range of reason "disabled", or None."""
    after, until = from_epoch_s(mark_s), from_epoch_s(now_s)
    count = count_slots(trigger, after, until)
    first, last = trigger.next_slot(after), trigger.previous_slot(until)
    if count == 0 or first is None or last is None:
        return None
    return MissedRange(name, to_epoch_s(first), to_epoch_s(last), count, DISABLED)


def _shared_steps(trigger: Trigger, shared: dict[tuple[Trigger, int], int | None]) -> NextSlot:
    compute = slots_of(trigger)

    def next_slot_s(after_s: int) -> int | None:
        key = (trigger, after_s)
        if key not in shared:
            shared[key] = compute(after_s)
        return shared[key]

    return next_slot_s
