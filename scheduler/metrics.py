"""What a node counts for Prometheus (NodeStats), and the pure rules behind it.

The node's threads call NodeStats: `turned` each main-loop pass, `dispatched` after each
dispatch (a burst may be 10,000 fires), so both do plain adds under a lock held for a few
microseconds per label value. Everything else (leader, token, next slots, what Redis holds) is
read only at scrape time, by the collector in scheduler/http_server.py.

Outcome of a fire (a slot the engine decided to fire), from what the claims answered:
- ``enqueued``: claimed and, with the state's Redis as broker, on its queue in the same step
  (another broker: in the outbox, which the publisher sends);
- ``skipped_paused``: the job is paused (its watermark moved on, nothing sent);
- ``skipped_overlap``: ``overlap = "skip"`` and its previous run is still going;
- ``already_fired``: the slot was claimed before (a dispatch resent after a Redis error, or
  another leader's claim);
- ``outbox_full``: refused by a full outbox (recorded as a missed range);
- ``handed_back``: not claimed because the lease was ending or the node stopping mid-burst
  (the next leader fires it);
- ``corrupt``: a value of the job's in Redis is not ours (the job is quarantined).

Cardinality: per-job series exist for at most ``metrics_jobs_max`` jobs, the first ones by
name (stable: adding a job late in the alphabet never moves the others' series); aggregates
without the job label always cover every job.
"""

from __future__ import annotations

import heapq
import threading
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import TypeVar

from scheduler.dispatch import Sent
from scheduler.engine import DISABLED, Due
from scheduler.jobspec import JobSpec

OUTCOMES = (
    "enqueued", "skipped_paused", "skipped_overlap", "already_fired", "outbox_full",
    "handed_back", "corrupt",
)  # fmt: skip
# Slot to enqueue: milliseconds normally, seconds in a large burst, minutes when catching up.
LATENESS_BUCKETS_S = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
)  # fmt: skip
# One main-loop pass: ~100 µs idle, a second or two for 100,000 jobs due at once.
LOOP_BUCKETS_S = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)  # fmt: skip

K = TypeVar("K")
_job_name = attrgetter("name")
_first, _second = itemgetter(0), itemgetter(1)


def labelled_jobs(names: Iterable[str], limit: int) -> frozenset[str]:
    """The jobs that get per-job series: the first `limit` by name. O(N log limit)."""
    if limit <= 0:
        return frozenset()
    return frozenset(heapq.nsmallest(limit, names))


def outcome_counts(fires: int, sent: Sent) -> dict[str, int]:
    """How `fires` due fires ended, by outcome (only outcomes that happened). What the claims
    did not account for was refused as corrupt (the only other answer that does not raise)."""
    counts = {
        "enqueued": sent.fired,
        "skipped_paused": sent.paused,
        "skipped_overlap": sent.skipped_overlap,
        "already_fired": sent.already,
        "outbox_full": sent.outbox_full,
        "handed_back": sent.handed_back,
    }
    counts["corrupt"] = max(0, fires - sum(counts.values()))
    return {outcome: n for outcome, n in counts.items() if n}


# Per outcome, the names of the labelled jobs' fires: an iterable of names (one per fire, fed
# to Counter.update, which counts it in C) or a mapping name -> count.
PerOutcome = dict[str, Iterable[str] | Mapping[str, int]]


def attribute(
    fires: Sequence[tuple[JobSpec, int]],
    not_enqueued: Sequence[tuple[str, int, str]],
    labelled: AbstractSet[str],
    everyone: bool = False,
) -> tuple[PerOutcome, Counter[int]]:
    """The fires of the `labelled` jobs by outcome (lazily: consume once), and the slots
    enqueued (for lateness, every job). `not_enqueued` is (job, slot, outcome) of each fire
    the dispatch did not enqueue (Sent.not_enqueued: empty in a clean burst, which is then
    one pass in C). `everyone`: every job is labelled."""
    names: Iterable[str] = ()
    if labelled:
        names = map(_job_name, map(_first, fires))
        if not everyone:
            names = filter(labelled.__contains__, names)
    if not not_enqueued:
        return {"enqueued": names}, Counter(map(_second, fires))
    slots: Counter[int] = Counter(map(_second, fires))
    enqueued: Counter[str] = Counter(names)
    per_outcome: dict[str, Counter[str]] = {}
    for job, slot_s, outcome in not_enqueued:
        slots[slot_s] -= 1
        if job in enqueued:
            enqueued[job] -= 1
            per_outcome.setdefault(outcome, Counter())[job] += 1
    return {"enqueued": +enqueued, **per_outcome}, +slots


class Buckets:
    """A histogram's raw bucket counts and sum; the caller holds the lock."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def add(self, value: float, times: int = 1) -> None:
        self.counts[bisect_left(self.bounds, value)] += times  # le: value <= bound
        self.sum += value * times

    def snapshot(self) -> HistogramSnapshot:
        cumulative, total = [], 0
        for bound, count in zip((*map(_le, self.bounds), "+Inf"), self.counts, strict=True):
            total += count
            cumulative.append((bound, total))
        return HistogramSnapshot(cumulative, self.sum)


def _le(bound: float) -> str:
    return repr(bound)


@dataclass(frozen=True)
class HistogramSnapshot:
    buckets: list[tuple[str, int]]  # (le, cumulative count), as Prometheus exposes them
    sum: float

    @property
    def count(self) -> int:
        return self.buckets[-1][1]


@dataclass(frozen=True)
class StatsSnapshot:
    """A consistent copy of every counter, for one scrape."""

    fires: dict[str, int]
    job_fires: dict[tuple[str, str], int]
    missed: dict[str, int]
    skipped: dict[str, int]
    lateness: HistogramSnapshot
    loop: HistogramSnapshot


class NodeStats:
    """Counters the node's threads update; cheap enough for the dispatch path."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fires: dict[str, int] = {}
        self._job_fires: dict[str, Counter[str]] = {}  # outcome -> job -> fires
        self._missed: dict[str, int] = {}
        self._skipped: dict[str, int] = {}
        self._lateness = Buckets(LATENESS_BUCKETS_S)
        self._loop = Buckets(LOOP_BUCKETS_S)
        # Which jobs get per-job series: none until the HTTP listener says where jobs are.
        self._jobs: Callable[[], Mapping[str, object]] | None = None
        self._jobs_max: Callable[[], int] = lambda: 0
        self._seen: tuple[Mapping[str, object] | None, int] = (None, 0)
        self._labelled: frozenset[str] = frozenset()
        self._everyone = False  # every job is labelled: no need to look each one up

    def follow(self, jobs: Callable[[], Mapping[str, object]], jobs_max: Callable[[], int]) -> None:
        """Count per job for the first `jobs_max()` of `jobs()` by name (both read again when
        the job set object or the bound changes)."""
        self._jobs, self._jobs_max = jobs, jobs_max

    def labelled(self) -> frozenset[str]:
        """The jobs with per-job series now. Recomputed only when the job set was replaced
        (the node replaces it on every change) or the bound changed."""
        if self._jobs is None:
            return self._labelled
        jobs, limit = self._jobs(), self._jobs_max()
        seen_jobs, seen_limit = self._seen
        if jobs is not seen_jobs or limit != seen_limit:
            labelled = labelled_jobs(jobs, limit)
            with self._lock:
                self._labelled, self._seen = labelled, (jobs, limit)
                self._everyone = len(labelled) >= len(jobs)
                # Jobs that left the bound lose their series (memory stays bounded too).
                self._job_fires = {
                    outcome: Counter({job: n for job, n in counts.items() if job in labelled})
                    for outcome, counts in self._job_fires.items()
                }
        return self._labelled

    def turned(self, seconds: float) -> None:
        """One pass of the main loop took `seconds`."""
        with self._lock:
            self._loop.add(seconds)

    def dispatched(self, due: Due, sent: Sent, now_s: float) -> None:
        """One dispatch of `due` ended with `sent`, at `now_s`. O(fires), mostly in C."""
        fires = due.fires
        totals = outcome_counts(len(fires), sent)
        labelled = self.labelled()
        per_outcome, slots = attribute(fires, sent.not_enqueued, labelled, self._everyone)
        missed: Counter[str] = Counter()
        disabled = 0  # a job enabled again: its disabled time's slots, skipped on purpose
        for gap in due.missed:
            if gap.reason == DISABLED:
                disabled += gap.count
            else:
                missed[gap.reason] += gap.count
        if sent.outbox_full:
            missed["outbox_full"] += sent.outbox_full
        with self._lock:
            _add(self._fires, totals)
            _add(self._missed, missed)
            if sent.paused:
                self._skipped["paused"] = self._skipped.get("paused", 0) + sent.paused
            if disabled:
                self._skipped[DISABLED] = self._skipped.get(DISABLED, 0) + disabled
            if sent.skipped_overlap:
                self._skipped["overlap"] = self._skipped.get("overlap", 0) + sent.skipped_overlap
            for outcome, names in per_outcome.items():
                self._job_fires.setdefault(outcome, Counter()).update(names)
            for slot_s, count in slots.items():
                self._lateness.add(max(0.0, now_s - slot_s), count)

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            by_outcome = {outcome: dict(counts) for outcome, counts in self._job_fires.items()}
            snap = StatsSnapshot(
                dict(self._fires),
                {},
                dict(self._missed),
                dict(self._skipped),
                self._lateness.snapshot(),
                self._loop.snapshot(),
            )
        for outcome, counts in by_outcome.items():  # flattened outside the lock
            snap.job_fires.update(((job, outcome), n) for job, n in counts.items() if n)
        return snap


def _add(into: dict[K, int], counts: Mapping[K, int]) -> None:
    for key, n in counts.items():
        into[key] = into.get(key, 0) + n
