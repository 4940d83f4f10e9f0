"""What `history` and `jobs show` list: fires, what workers reported of them, and the slots
that were not fired, merged into rows, newest first. Pure: the store reads the entries.

A fire's outcome is the newest event a worker reported for its task id, except that a
"received" after another event is a repeat or redelivery of that run, not news: it only counts
when nothing else was reported. A fire nobody reported on is "enqueued" for `REPORT_WAIT_S`
after it was sent (still queued, most likely) and "unknown" after that: no worker took it, the
worker runs without the hooks (`jobs.hooks.install`), or its reports were trimmed away.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scheduler.wire import member_id, slot_text, task_id

# How long a fire without any worker report reads as "enqueued" before it reads as "unknown".
REPORT_WAIT_S = 15 * 60.0
# History entry kinds that sent a task, and those that record a decision not to (or a warning).
FIRE_KINDS = ("scheduled", "manual", "backfill", "catchup")
DECISION_KINDS = ("skipped", "alert")
# Why a slot was deliberately not sent: its range reads "skipped", any other reason "missed".
DELIBERATE_REASONS = frozenset({"overlap", "paused", "disabled"})
# Outcomes `history --failed` keeps.
FAILED = frozenset({"failed"})
_FINISHED = ("succeeded", "failed", "retried")


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One entry of the history stream: a fire (kind in FIRE_KINDS), or a decision ("skipped",
    "alert") with its reason. `entry_ms` is when it was written (the stream id, Redis TIME)."""

    entry_ms: int
    job: str
    kind: str
    slot_s: int | None
    task_id: str | None = None  # None for a scheduled fire: derived from (namespace, job, slot)
    token: str = ""
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class WorkerEvent:
    """One event a worker reported (a `Keys.reports(job)` entry)."""

    entry_ms: int
    event: str
    slot: str
    task_id: str
    kind: str = "scheduled"
    worker: str = ""
    duration_s: float | None = None
    error: str | None = None
    # The stream id's sequence: a fast task's started and succeeded share one millisecond.
    entry_seq: int = 0
    # What the run said of itself (built-in tasks: exit code or status, output), multi-line.
    detail: str | None = None
    # A chain's step or a group's member: its index, and (a chain's later steps, which the
    # worker sends) the task id of the fire it belongs to.
    step: int | None = None
    fire: str | None = None


@dataclass(frozen=True, slots=True)
class SlotRange:
    """Slots of one job not sent: a missed range, or a gap still open."""

    job: str
    first_s: int
    last_s: int
    count: int
    reason: str
    open: bool = False


@dataclass(frozen=True, slots=True)
class Composition:
    """What a chain or group job's definition says of its fires: how they are composed and
    the task of each step, in order (so how many steps a whole fire has)."""

    compose: str  # "chain" or "group"
    tasks: tuple[str, ...]


def fire_task_id(namespace: str, entry: HistoryEntry) -> str | None:
    """The task id a fire was sent with: the operator's, or the slot's deterministic one."""
    if entry.task_id is not None:
        return entry.task_id
    if entry.slot_s is None:
        return None
    return task_id(namespace, entry.job, entry.slot_s)


def rows(
    namespace: str,
    entries: Iterable[HistoryEntry],
    events: Mapping[str, Sequence[WorkerEvent]],
    ranges: Iterable[SlotRange],
    now_s: float,
    compositions: Mapping[str, Composition] | None = None,
) -> list[dict[str, Any]]:
    """Every row, newest first: one per (job, slot, task id) fire with what its worker reported
    (`events` by job), one per decision, one per range. A "skipped" entry that a range of the
    same job and reason covers is left out: the range already says it, with its count. A fire
    of a job in `compositions` (chains and groups) reads as a whole, with its steps."""
    ranges = list(ranges)
    compositions = compositions or {}
    by_task: dict[str, list[WorkerEvent]] = {}
    owner: dict[str, str] = {}  # task id -> its job
    for job, job_events in events.items():
        for event in job_events:
            by_task.setdefault(event.task_id, []).append(event)
            owner[event.task_id] = job
    parts = _Parts(by_task)
    result: list[dict[str, Any]] = []
    seen: set[tuple[str, int | None, str | None]] = set()
    # Oldest first, so a fire written twice keeps its first (real) enqueue time.
    for entry in sorted(entries, key=lambda e: e.entry_ms):
        if entry.kind in FIRE_KINDS:
            ident = fire_task_id(namespace, entry)
            if (entry.job, entry.slot_s, ident) in seen:
                continue
            seen.add((entry.job, entry.slot_s, ident))
            # Task ids are unique per (job, slot) or per trigger, and a fire written twice is
            # listed once: every report of its task id is about this fire.
            row = fire_row(entry, ident, by_task.get(ident or "", ()), now_s)
            result.append(parts.whole(row, compositions.get(entry.job), now_s))
        elif not _covered(entry, ranges):
            result.append(decision_row(entry))
    # Runs the workers reported whose fire is no longer in the shared history stream (it
    # keeps the newest entries of all jobs; each job's reports are kept apart).
    listed = {ident for _, _, ident in seen}
    for ident, reported in by_task.items():
        if ident not in listed and ident not in parts.used:
            row = reported_row(owner[ident], ident, reported, now_s)
            result.append(parts.whole(row, compositions.get(owner[ident]), now_s))
    result.extend(range_row(r) for r in ranges)
    result.sort(key=lambda row: row["at_ms"], reverse=True)
    return result


def fire_row(
    entry: HistoryEntry, ident: str | None, events: Sequence[WorkerEvent], now_s: float
) -> dict[str, Any]:
    """A fire and what its worker reported (`events`: those of its task id, any order)."""
    events = sorted(events, key=lambda e: (e.entry_ms, e.entry_seq))
    lateness = None if entry.slot_s is None else round(entry.entry_ms / 1000 - entry.slot_s, 3)
    newest = next((e for e in reversed(events) if e.event != "received"), None)
    if newest is None and events:
        newest = events[-1]
    if newest is not None:
        outcome = newest.event
    else:
        outcome = "enqueued" if now_s - entry.entry_ms / 1000 < REPORT_WAIT_S else "unknown"
    started = [e for e in events if e.event == "started"]
    finished = next((e for e in reversed(events) if e.event in _FINISHED), None)
    worker = next((e.worker for e in reversed(events) if e.worker), None)
    return {
        **_blank(entry.job, entry.kind, entry.entry_ms),
        "slot": None if entry.slot_s is None else slot_text(entry.slot_s),
        "task_id": ident,
        "enqueued_at": instant_text(entry.entry_ms),
        "lateness_s": lateness,
        "outcome": outcome,
        "started_at": instant_text(started[-1].entry_ms) if started else None,
        "duration_s": finished.duration_s if finished is not None else None,
        "attempts": len(started),
        "worker": worker,
        "error": newest.error if newest is not None and outcome in ("failed", "retried") else None,
        "detail": finished.detail if finished is not None else None,
        "token": entry.token,
    }


class _Parts:
    """The steps of chain and group fires, found among the reports: a chain's later steps by
    the fire's task id they carry, a group's members by the task ids the fire gave them."""

    def __init__(self, by_task: Mapping[str, Sequence[WorkerEvent]]) -> None:
        self._by_task = by_task
        self._chained: dict[tuple[str, int], list[WorkerEvent]] = {}
        for events in by_task.values():
            for event in events:
                if event.fire is not None and event.step is not None:
                    self._chained.setdefault((event.fire, event.step), []).append(event)
        self.used: set[str] = set()  # task ids shown as a step of a listed fire

    def whole(
        self, row: dict[str, Any], composition: Composition | None, now_s: float
    ) -> dict[str, Any]:
        """`row` of a fire, as the whole of its steps when its job is a chain or group."""
        ident = row["task_id"]
        if composition is None or ident is None:
            return row
        steps = []
        for index, task in enumerate(composition.tasks):
            if composition.compose == "group":
                events: Sequence[WorkerEvent] = self._by_task.get(member_id(ident, index), ())
            elif index == 0:
                events = self._by_task.get(ident, ())
            else:
                events = self._chained.get((ident, index), ())
            self.used.update(e.task_id for e in events)
            steps.append(step_record(index, task, events))
        return {**row, **whole_outcome(row, steps), "steps": steps}


def step_record(index: int, task: str, events: Sequence[WorkerEvent]) -> dict[str, Any]:
    """One step of a chain or group fire: "pending" until a worker reports it."""
    ordered = sorted(events, key=lambda e: (e.entry_ms, e.entry_seq))
    newest = next((e for e in reversed(ordered) if e.event != "received"), None)
    newest = newest or (ordered[-1] if ordered else None)
    finished = next((e for e in reversed(ordered) if e.event in _FINISHED), None)
    started = [e for e in ordered if e.event == "started"]
    outcome = newest.event if newest is not None else "pending"
    return {
        "step": index,
        "task": task,
        "task_id": ordered[0].task_id if ordered else None,
        "outcome": outcome,
        "started_at": instant_text(started[-1].entry_ms) if started else None,
        "duration_s": finished.duration_s if finished is not None else None,
        "worker": next((e.worker for e in reversed(ordered) if e.worker), None),
        "error": newest.error if newest is not None and outcome in ("failed", "retried") else None,
        "finished_ms": finished.entry_ms if finished is not None else None,
        "started_ms": started[0].entry_ms if started else None,
    }


def whole_outcome(row: Mapping[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The outcome of a whole fire: failed when a step failed, succeeded when every step did,
    the fire's own (enqueued, unknown) while no step was reported, running otherwise. Its
    duration runs from the first start to the last finish; its error is the failed step's."""
    outcomes = [step["outcome"] for step in steps]
    failed = next((step for step in steps if step["outcome"] == "failed"), None)
    if failed is not None:
        outcome = "failed"
    elif outcomes and all(o == "succeeded" for o in outcomes):
        outcome = "succeeded"
    elif all(o == "pending" for o in outcomes):
        outcome = row["outcome"]
    else:
        outcome = "running"
    starts = [s["started_ms"] for s in steps if s["started_ms"] is not None]
    ends = [s["finished_ms"] for s in steps if s["finished_ms"] is not None]
    duration = None
    if outcome in ("failed", "succeeded") and starts and ends:
        duration = max(0.0, round((max(ends) - min(starts)) / 1000, 3))
    error = None if failed is None else f"step {failed['step']}: {failed['error']}"
    for step in steps:
        del step["started_ms"], step["finished_ms"]
    return {"outcome": outcome, "duration_s": duration, "error": error}


def reported_row(
    job: str, ident: str, events: Sequence[WorkerEvent], now_s: float
) -> dict[str, Any]:
    """A run known from its worker's reports alone: when it was sent is no longer known (no
    enqueue time, no lateness); it sorts at its first report."""
    first = min(events, key=lambda e: (e.entry_ms, e.entry_seq))
    slot_s = next((s for e in events if (s := _slot_s(e.slot)) is not None), None)
    entry = HistoryEntry(first.entry_ms, job, first.kind, slot_s, ident)
    return {**fire_row(entry, ident, events, now_s), "enqueued_at": None, "lateness_s": None}


def _slot_s(text: str) -> int | None:
    """A slot as the headers write it ("2026-01-01T00:00:00Z"), or None."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(moment.timestamp()) if moment.tzinfo is not None else None


def decision_row(entry: HistoryEntry) -> dict[str, Any]:
    """A slot the leader decided not to send ("skipped"), or an alert."""
    return {
        **_blank(entry.job, entry.kind, entry.entry_ms),
        "slot": None if entry.slot_s is None else slot_text(entry.slot_s),
        "outcome": entry.kind,
        "reason": entry.reason,
        "token": entry.token,
    }


def range_row(found: SlotRange) -> dict[str, Any]:
    """A range of slots not sent; it sorts at its last slot (when the newest of them fell due)."""
    outcome = "skipped" if found.reason in DELIBERATE_REASONS else "missed"
    return {
        **_blank(found.job, outcome, found.last_s * 1000),
        "slot": slot_text(found.first_s),
        "outcome": outcome,
        "reason": found.reason,
        "first": slot_text(found.first_s),
        "last": slot_text(found.last_s),
        "count": found.count,
        "open": found.open,
    }


def instant_text(epoch_ms: int) -> str:
    """An instant to the millisecond, UTC: "2026-01-01T00:00:00.123Z"."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def _blank(job: str, kind: str, at_ms: int) -> dict[str, Any]:
    # Every row has every key, so --json consumers and the table need no special cases.
    return {
        "job": job, "kind": kind, "slot": None, "task_id": None, "enqueued_at": None,
        "lateness_s": None, "outcome": None, "started_at": None, "duration_s": None,
        "attempts": None, "worker": None, "error": None, "detail": None, "reason": None,
        "first": None, "last": None, "count": None, "open": None, "token": None,
        "at": instant_text(at_ms), "at_ms": at_ms,
    }  # fmt: skip


def _covered(entry: HistoryEntry, ranges: Sequence[SlotRange]) -> bool:
    if entry.kind != "skipped" or entry.slot_s is None:
        return False
    return any(
        r.job == entry.job and r.reason == entry.reason and r.first_s <= entry.slot_s <= r.last_s
        for r in ranges
    )


def detail(row: Mapping[str, Any]) -> str | None:
    """The table's DETAIL cell: a fire's error, a decision's reason, a range's extent."""
    if row.get("count") is not None:
        more = f", {row['count']} slots through {row['last']}" if row["count"] != 1 else ""
        gap = ", still open" if row.get("open") else ""
        return f"{row['reason']}{more}{gap}"
    error = row.get("error")
    if error is not None:
        return str(error)
    output = row.get("detail")
    if output:  # a built-in task's success: its first line ("exit 0 in 0.004s")
        return str(output).splitlines()[0]
    reason = row.get("reason")
    return str(reason) if reason is not None else None
