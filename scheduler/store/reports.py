"""What workers report about each fire, and the reads `history` and `jobs show` make.

The worker hooks write each event (received, started, succeeded, failed, retried) with one
script (lua/report_add.lua): into the job's capped stream `Keys.reports(job)`, into the job's
newest outcome (`Keys.outcomes`) and, on success, `Keys.last_success`. Never one key per fire.

The readers are tolerant, like scheduler/store/state.py: every read is bounded (MAX_ENTRIES),
a key of the wrong type or an entry this package did not write becomes an Unreadable naming
it, and only Redis being unreachable raises (StoreUnavailable).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import redis

from scheduler.errors import StateCorrupt
from scheduler.history import DECISION_KINDS, FIRE_KINDS, HistoryEntry, SlotRange, WorkerEvent
from scheduler.store.failures import redis_errors
from scheduler.store.keys import Keys
from scheduler.store.pauses import PauseRecord
from scheduler.store.scripts import register
from scheduler.store.state import (
    MAX_ENTRIES,
    MAX_SLOT_S,
    MAX_VALUE_BYTES,
    Reading,
    StateStore,
    Unreadable,
    shown,
    text,
)

T = TypeVar("T")

EVENTS = ("received", "started", "succeeded", "failed", "retried")
# Approximate trimming (MAXLEN ~) only frees whole stream nodes (100 entries by default), so a
# smaller cap would not be kept at all: below this, trimming is exact.
EXACT_CAP_BELOW = 100
# A worker's report fields are short; longer ones are cut before they are written.
_FIELD_CHARS = 500
# Except a run's detail (a built-in task's exit code and 2 KiB tails of stdout and stderr).
DETAIL_CHARS = 5000
_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class Retention:
    """How much of each job's reports stream is kept: entries, and age by Redis TIME."""

    max_entries: int = 1000
    ttl: timedelta = timedelta(days=7)


class ReportWriter:
    """Writes worker reports through one client (the worker hooks make one per process)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self._keys = keys
        self._script = register(client, "report_add")

    def add(
        self,
        job: str,
        event: str,
        slot: str,
        task_id: str,
        *,
        kind: str = "scheduled",
        worker: str = "",
        duration_s: float | None = None,
        error: str | None = None,
        detail: str | None = None,
        retention: Retention = Retention(),  # frozen: one shared default is safe
        step: int | None = None,
        fire: str | None = None,
    ) -> list[str]:
        """Record one event (`error`: a failure's line; `detail`: what the run said of itself,
        multi-line; `step`: a chain step's or group member's index, `fire`: the task id of the
        fire a chain's later step belongs to); the keys left alone because they hold another
        type (the script still writes the others). One round trip."""
        if event not in EVENTS:
            raise ValueError(f"event must be one of {', '.join(EVENTS)}, got {event!r}")
        keys = self._keys
        cap = max(1, retention.max_entries)
        args: list[str | int] = [
            job, event, slot[:_FIELD_CHARS], task_id[:_FIELD_CHARS], kind[:_FIELD_CHARS],
            worker[:_FIELD_CHARS], "" if duration_s is None else f"{duration_s:.3f}",
            (error or "")[:_FIELD_CHARS], cap, max(1, int(retention.ttl.total_seconds() * 1000)),
            "=" if cap < EXACT_CAP_BELOW else "~", (detail or "")[:DETAIL_CHARS],
            "" if step is None else str(step), (fire or "")[:_FIELD_CHARS],
        ]  # fmt: skip
        with redis_errors("recording a worker report"):
            skipped = self._script(
                keys=[keys.reports(job), keys.outcomes, keys.last_success], args=args
            )
        return [text(k) if isinstance(k, bytes) else str(k) for k in skipped]


# -- readers --------------------------------------------------------------------------------


def read_reports(
    client: redis.Redis, keys: Keys, jobs: Mapping[str, int | None]
) -> Reading[dict[str, list[WorkerEvent]]]:
    """The newest reports of each job (`jobs`: job -> the oldest entry time wanted, ms, or None
    for as far back as MAX_ENTRIES reach), newest first. Pipelined: two round trips per
    thousand jobs."""
    result: dict[str, list[WorkerEvent]] = {}
    unreadable: list[Unreadable] = []
    names = list(jobs)
    for start in range(0, len(names), _CHUNK):
        chunk = names[start : start + _CHUNK]
        stream_keys = [keys.reports(job) for job in chunk]
        replies = _streams(
            client,
            stream_keys,
            "reading worker reports",
            [jobs[job] for job in chunk],
            unreadable,
        )
        for job, key, entries in zip(chunk, stream_keys, replies, strict=True):
            events = result.setdefault(job, [])
            for entry_id, fields in entries:
                found = _worker_event(key, entry_id, fields)
                if isinstance(found, Unreadable):
                    unreadable.append(found)
                else:
                    events.append(found)
    return Reading(result, unreadable)


def read_history(
    client: redis.Redis,
    keys: Keys,
    *,
    since_ms: int | None = None,
    job: str | None = None,
    count: int = MAX_ENTRIES,
) -> Reading[list[HistoryEntry]]:
    """The newest `count` (at most MAX_ENTRIES) entries of the history stream, newest first,
    none written before `since_ms`; of `job` only, when given (still reading at most
    MAX_ENTRIES entries of the stream, all jobs together)."""
    unreadable: list[Unreadable] = []
    [entries] = _streams(
        client, [keys.history], "reading the history", [since_ms], unreadable,
        count=max(1, min(count, MAX_ENTRIES)),
    )  # fmt: skip
    found: list[HistoryEntry] = []
    for entry_id, fields in entries:
        if job is not None and fields.get(b"job") != job.encode():
            continue
        entry = _history_entry(keys.history, entry_id, fields)
        if isinstance(entry, Unreadable):
            unreadable.append(entry)
        else:
            found.append(entry)
    return Reading(found, unreadable)


def read_ranges(store: StateStore, job: str | None = None) -> Reading[list[SlotRange]]:
    """Missed and skipped ranges (open gaps first, then the newest recorded), of `job` or all.
    StateStore.read_missed has checked first, last and count already."""
    missed = store.read_missed(MAX_ENTRIES)
    ranges = [
        SlotRange(
            job=record["job"],
            first_s=int(record["first"]),
            last_s=int(record["last"]),
            count=int(record["count"]),
            reason=record.get("reason", ""),
            open=record.get("open") == "yes",
        )
        for record in missed.value
        if job is None or record["job"] == job
    ]
    return Reading(ranges, missed.unreadable)


@dataclass(frozen=True, slots=True)
class JobState:
    """What `jobs show` tells of one job besides its fires: where its schedule stands."""

    watermark_s: int | None = None
    pause: dict[str, Any] | None = None  # {since, reason, watermark}, as `pause` wrote it
    last_success_s: float | None = None


def read_job_state(client: redis.Redis, keys: Keys, job: str) -> Reading[JobState]:
    """The watermark, pause record and last success of `job`; a garbled one is reported."""
    unreadable: list[Unreadable] = []
    raw = _field(client, keys.watermarks, job, unreadable)
    watermark = _checked(raw, keys.watermarks, job, _slot, "not a slot", unreadable)
    raw = _field(client, keys.pause_info, job, unreadable)
    pause = None
    if raw is not None:
        try:
            pause = PauseRecord.parse(raw).record()
        except ValueError as exc:  # it says what was found
            unreadable.append(Unreadable(keys.pause_info, str(exc), job))
    raw = _field(client, keys.last_success, job, unreadable)
    success = _checked(raw, keys.last_success, job, _seconds, "not a time", unreadable)
    return Reading(JobState(watermark, pause, success), unreadable)


# -- the tolerant layer ---------------------------------------------------------------------


def _kind_name(kind: object) -> str:
    return text(kind) if isinstance(kind, bytes) else str(kind)


def _streams(
    client: redis.Redis,
    stream_keys: Sequence[str],
    doing: str,
    oldest_ms: Sequence[int | None],
    unreadable: list[Unreadable],
    count: int = MAX_ENTRIES,
) -> list[list[tuple[bytes, dict[bytes, bytes]]]]:
    """The newest `count` entries of each stream (none older than its `oldest_ms`), newest
    first; a key of another type, or one that changed type meanwhile, reads as empty and is
    reported."""
    with redis_errors(doing):
        pipe = client.pipeline(transaction=False)
        for key in stream_keys:
            pipe.type(key)
        kinds = pipe.execute()
        pipe = client.pipeline(transaction=False)
        for key, kind, oldest in zip(stream_keys, kinds, oldest_ms, strict=True):
            if _kind_name(kind) == "stream":
                pipe.xrevrange(key, min="-" if oldest is None else str(oldest), count=count)
        replies = iter(pipe.execute(raise_on_error=False))
    result: list[list[tuple[bytes, dict[bytes, bytes]]]] = []
    for key, kind in zip(stream_keys, kinds, strict=True):
        name = _kind_name(kind)
        if name not in ("stream", "none"):
            unreadable.append(Unreadable(key, f"a {name}, not a stream"))
        if name != "stream":
            result.append([])
            continue
        reply = next(replies)
        if isinstance(reply, redis.ResponseError):  # the key changed type since TYPE answered
            try:
                with redis_errors(doing):
                    raise reply
            except StateCorrupt as exc:
                unreadable.append(Unreadable(key, f"a value Redis refused to read ({exc})"))
            result.append([])
            continue
        result.append(list(reply))
    return result


def _field(client: redis.Redis, key: str, name: str, unreadable: list[Unreadable]) -> bytes | None:
    with redis_errors(f"reading {key}"):
        kind = _kind_name(client.type(key))
    if kind not in ("hash", "none"):
        unreadable.append(Unreadable(key, f"a {kind}, not a hash"))
        return None
    try:
        with redis_errors(f"reading {key}"):
            value: bytes | None = client.hget(key, name)  # type: ignore[assignment]
    except StateCorrupt as exc:
        unreadable.append(Unreadable(key, f"a value Redis refused to read ({exc})"))
        return None
    return value


def _checked(
    raw: bytes | None,
    key: str,
    name: str,
    parse: Callable[[bytes], T],
    what: str,
    unreadable: list[Unreadable],
) -> T | None:
    if raw is None:
        return None
    try:
        return parse(raw)
    except ValueError:
        unreadable.append(Unreadable(key, f"{shown(raw)}, {what}", name))
        return None


def _entry_ms(entry_id: bytes) -> int:
    return int(entry_id.split(b"-", 1)[0])


def _entry_seq(entry_id: bytes) -> int:
    _, _, seq = entry_id.partition(b"-")
    return int(seq) if seq.isdigit() else 0


def _value(fields: Mapping[bytes, bytes], name: str) -> str | None:
    raw = fields.get(name.encode())
    return None if raw is None else text(raw[:MAX_VALUE_BYTES])


def _worker_event(
    key: str, entry_id: bytes, fields: Mapping[bytes, bytes]
) -> WorkerEvent | Unreadable:
    event, task_id = _value(fields, "event"), _value(fields, "task_id")
    wrong = None
    if event not in EVENTS:
        wrong = f"event {shown(fields.get(b'event', b''))}"
    elif not task_id:
        wrong = f"task_id {shown(fields.get(b'task_id', b''))}"
    duration = _value(fields, "duration_s")
    duration_s = None
    step_text = _value(fields, "step")
    # Digits only, and few (int() refuses "²" and strings of thousands of digits).
    step = None
    if step_text is not None and len(step_text) <= 6 and step_text.isascii():
        step = int(step_text) if step_text.isdigit() else None
    if step_text is not None and step is None:
        wrong = wrong or f"step {shown(step_text)}"
    if wrong is None and duration is not None:
        try:
            duration_s = _seconds(duration.encode())
        except ValueError:
            wrong = f"duration_s {shown(duration)}"
    if wrong is not None:
        return Unreadable(key, f"a report with {wrong}", text(entry_id))
    assert event is not None
    assert task_id is not None
    return WorkerEvent(
        entry_ms=_entry_ms(entry_id),
        entry_seq=_entry_seq(entry_id),
        event=event,
        slot=_value(fields, "slot") or "",
        task_id=task_id,
        kind=_value(fields, "kind") or "scheduled",
        worker=_value(fields, "worker") or "",
        duration_s=duration_s,
        error=_value(fields, "error") or None,
        detail=_value(fields, "detail") or None,
        step=step,
        fire=_value(fields, "fire") or None,
    )


def _history_entry(
    key: str, entry_id: bytes, fields: Mapping[bytes, bytes]
) -> HistoryEntry | Unreadable:
    job, kind = _value(fields, "job"), _value(fields, "kind") or "scheduled"
    slot_raw = fields.get(b"slot")
    task_id = _value(fields, "task_id")
    wrong = None
    slot_s = None
    if not job:
        wrong = f"job {shown(fields.get(b'job', b''))}"
    elif kind not in FIRE_KINDS and kind not in DECISION_KINDS:
        wrong = f"kind {shown(kind)}"
    elif slot_raw is not None or kind in FIRE_KINDS:
        try:
            slot_s = _slot(slot_raw or b"")
        except ValueError:
            wrong = f"slot {shown(slot_raw or b'')}"
    if wrong is None and kind in FIRE_KINDS and kind != "scheduled" and not task_id:
        wrong = f"kind {kind} and no task_id"
    if wrong is not None:
        return Unreadable(key, f"a history entry with {wrong}", text(entry_id))
    assert job is not None
    return HistoryEntry(
        entry_ms=_entry_ms(entry_id),
        job=job,
        kind=kind,
        slot_s=slot_s,
        task_id=task_id or None,
        token=_value(fields, "token") or "",
        reason=_value(fields, "reason"),
    )


def _slot(raw: bytes) -> int:
    """A slot as epoch seconds, from its digits or its ISO text ("2026-01-01T00:00:00Z")."""
    if raw.isdigit() and len(raw) <= 20:
        slot = int(raw)
    elif 0 < len(raw) <= 40:
        try:
            moment = datetime.fromisoformat(raw.decode("ascii").replace("Z", "+00:00"))
        except UnicodeDecodeError:
            raise ValueError from None
        if moment.tzinfo is None:
            raise ValueError
        slot = math.floor(moment.timestamp())
    else:
        raise ValueError
    if not 0 <= slot <= MAX_SLOT_S:
        raise ValueError
    return slot


def _seconds(raw: bytes) -> float:
    if len(raw) > 40:
        raise ValueError
    value = float(raw)
    if not math.isfinite(value) or not 0 <= value <= MAX_SLOT_S:
        raise ValueError
    return value
