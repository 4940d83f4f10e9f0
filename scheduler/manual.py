"""Operator fires, decided without I/O: which slots a backfill or a catch-up covers, the bounds
and the confirmation threshold, each fire's task id and kind, and which slots are skipped as
already fired.

`trigger` fires under a task id of its own (`wire.manual_task_id`), so it never collides with
a slot's; a backfill or catch-up fires a slot under the slot's own deterministic id
(`wire.task_id`), so the worker's run-once claim tells it from a repeat of the scheduled fire.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduler.clock import utc
from scheduler.jobspec import JobSpec
from scheduler.triggers.base import count_slots, iter_slots
from scheduler.wire import manual_task_id, slot_text, task_id

# A backfill or catch-up refuses more slots than this unless `--max` raises it.
DEFAULT_MAX_SLOTS = 10_000
# Highest `--max`: a plan is held in memory and sent one message at a time.
MAX_SLOTS_LIMIT = 1_000_000
# More fires than this ask the operator first (unless --yes).
CONFIRM_ABOVE = 100
# A pause reason is shown in tables: short, one line.
REASON_MAX_CHARS = 200
# The newest instant a slot can be written as (9999-12-31T23:59:59Z).
LAST_SLOT_S = 253_402_300_799

# Why a slot is not sent again.
IN_HISTORY = "already fired (history)"
RUN_CLAIMED = "already ran (run claim)"
REPORTED = "already ran (worker reports)"

# Slots are whole seconds: [first, last] is (first - 1 µs, last] for the triggers' walk.
_JUST_BEFORE = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Fire:
    """One message an operator sends: the job, its slot, the task id and why it was sent."""

    job: str
    slot_s: int
    task_id: str
    kind: str  # "manual", "backfill" or "catchup" (wire.FIRE_KINDS)

    @property
    def slot(self) -> str:
        return slot_text(self.slot_s)


@dataclass(frozen=True, slots=True)
class Skip:
    """A slot of the range that is not sent, and why."""

    job: str
    slot_s: int
    task_id: str
    reason: str

    @property
    def slot(self) -> str:
        return slot_text(self.slot_s)


@dataclass(frozen=True, slots=True)
class Plan:
    """What a backfill or a catch-up sends, and what it skips; oldest first."""

    send: list[Fire]
    skipped: list[Skip]

    def records(self) -> list[dict[str, str | None]]:
        """One row per slot, oldest first, for the dry run's table and JSON."""
        rows: list[tuple[int, dict[str, str | None]]] = [
            (f.slot_s, {"job": f.job, "slot": f.slot, "task_id": f.task_id, "action": "send",
                        "reason": None})
            for f in self.send
        ] + [
            (s.slot_s, {"job": s.job, "slot": s.slot, "task_id": s.task_id, "action": "skip",
                        "reason": s.reason})
            for s in self.skipped
        ]  # fmt: skip
        return [row for _, row in sorted(rows, key=lambda pair: (pair[0], str(pair[1]["job"])))]


class TooManySlots(ValueError):
    """A range holds more slots than allowed; `count` says how many."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"{count} slots, more than {limit}")
        self.count = count
        self.limit = limit


def slots_between(job: JobSpec, first: datetime, last: datetime, limit: int) -> list[int]:
    """Every slot of the job's trigger in [first, last] (epoch seconds, oldest first).

    Counted before walked (O(1) for `every`), so a range of millions is refused at once:
    TooManySlots when there are more than `limit`."""
    after = first - _JUST_BEFORE
    if last < first:
        return []
    count = count_slots(job.trigger, after, last)
    if count > limit:
        raise TooManySlots(count, limit)
    return [int(slot.timestamp()) for slot in iter_slots(job.trigger, after, last)]


def slots_after(job: JobSpec, after_s: int, until_s: int, limit: int) -> list[int]:
    """Every slot in (after_s, until_s]: what a paused job skipped; TooManySlots as above."""
    if until_s <= after_s:
        return []
    return slots_between(job, utc(after_s + 1), utc(until_s), limit)


def catchup_range(
    pause_watermark_s: int | None, paused_since_s: float, resume_watermark_s: int | None
) -> tuple[int, int] | None:
    """(after, until]: the slots a job skipped while paused, from its watermark when paused
    and when resumed (None: no slot claimed yet). Without a watermark at the pause, nothing
    had been claimed, so the skipped slots are the ones after the pause itself."""
    if resume_watermark_s is None:
        return None
    after_s = pause_watermark_s if pause_watermark_s is not None else int(paused_since_s)
    if resume_watermark_s <= after_s:
        return None
    return after_s, resume_watermark_s


def plan_fires(
    namespace: str,
    job: str,
    slots: Sequence[int],
    kind: str,
    fired: Collection[int] = (),
    claimed: Collection[str] = (),
    reported: Collection[str] = (),
) -> Plan:
    """Each slot under its own deterministic task id, unless it was fired already: it is in
    `fired` (the history stream), its task id in `claimed` (a worker's run claim) or in
    `reported` (the job's worker reports)."""
    send: list[Fire] = []
    skipped: list[Skip] = []
    for slot_s in slots:
        ident = task_id(namespace, job, slot_s)
        if slot_s in fired:
            skipped.append(Skip(job, slot_s, ident, IN_HISTORY))
        elif ident in claimed:
            skipped.append(Skip(job, slot_s, ident, RUN_CLAIMED))
        elif ident in reported:
            skipped.append(Skip(job, slot_s, ident, REPORTED))
        else:
            send.append(Fire(job, slot_s, ident, kind))
    return Plan(send, skipped)


def manual_fire(namespace: str, job: str, slot_s: int, sequence: int) -> Fire:
    """A `trigger`: the slot, under the task id of the operator's `sequence`-th trigger."""
    return Fire(job, slot_s, manual_task_id(namespace, job, slot_text(slot_s), sequence), "manual")


def whole_second(instant: datetime) -> int:
    """An instant as a slot: epoch seconds, rounded down."""
    return int(instant.timestamp() // 1)


def slot_problem(slot_s: int) -> str | None:
    """Why an instant cannot be a slot (the headers write 1970 to 9999, UTC), or None."""
    if 0 <= slot_s <= LAST_SLOT_S:
        return None
    return f"expected an instant from {slot_text(0)} to {slot_text(LAST_SLOT_S)}"


def window_problem(first: datetime, last: datetime, now_s: float) -> str | None:
    """Why [first, last] cannot be backfilled, or None: it must be in order and in the past
    (the scheduler fires the rest)."""
    for option, instant in (("--from", first), ("--to", last)):
        problem = slot_problem(whole_second(instant))
        if problem is not None:
            return f"{option}: {problem}"
    if last < first:
        return f"--from {first.isoformat()} is later than --to {last.isoformat()}"
    if last.timestamp() > now_s:
        return (
            f"--to {last.isoformat()} is later than now ({slot_text(int(now_s))}): backfill "
            "covers past slots; the scheduler fires the rest"
        )
    return None


def reason_problem(reason: str) -> str | None:
    """Why a pause reason is refused (too long, or not one printable line), or None."""
    if len(reason) > REASON_MAX_CHARS:
        return f"--reason: at most {REASON_MAX_CHARS} characters, got {len(reason)}"
    if not reason.isprintable():
        return "--reason: printable text only (no control characters or line breaks)"
    return None


def needs_confirmation(count: int, assume_yes: bool) -> bool:
    return count > CONFIRM_ABOVE and not assume_yes
