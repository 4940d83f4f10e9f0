"""Pausing and resuming jobs, each in one transaction with its record in `Keys.pause_info`.

The claim script skips the slots of a job in `Keys.paused` (it advances the watermark and
counts them in `Keys.paused_skips`, and sends nothing). So the watermark at the pause and the
watermark at the resume bound exactly the slots skipped meanwhile: `resume --catchup` fires
the slots in (pause watermark, resume watermark].

A pause reads the watermark and writes the record in one optimistic transaction (WATCH on
the keys it reads, MULTI/EXEC): the record holds the watermark the job had when it stopped,
even while a leader claims slots, or the transaction is tried again. A resume is one MULTI
that removes the job from the set and reads (and removes) its record and its watermark.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from scheduler.errors import StateCorrupt, StoreUnavailable
from scheduler.store.claims import STREAM_CAP
from scheduler.store.failures import redis_errors
from scheduler.store.keys import Keys
from scheduler.store.state import MAX_SLOT_S, Reading, StateStore, Unreadable, shown, text

# A pause whose watched keys keep changing (a leader claiming every few milliseconds) is tried
# this many times before it gives up; each try is a few round trips.
PAUSE_TRIES = 50
_EXPECTED = {"paused": "set", "pause_info": "hash", "watermarks": "hash"}


@dataclass(frozen=True, slots=True)
class PauseRecord:
    """When (Redis TIME, epoch s) and why a job was paused, and its watermark then."""

    since_s: float
    reason: str
    watermark_s: int | None

    def to_json(self) -> str:
        return json.dumps(self.record(), sort_keys=True)

    def record(self) -> dict[str, Any]:
        return {"since": self.since_s, "reason": self.reason, "watermark": self.watermark_s}

    @classmethod
    def parse(cls, raw: bytes) -> PauseRecord:
        """The record as `to_json` wrote it; ValueError (saying what was found) otherwise."""
        try:
            found = json.loads(raw) if len(raw) <= 4096 else None
        except (ValueError, RecursionError):
            found = None
        if not isinstance(found, dict):
            raise ValueError(f"{shown(raw)}, not a pause record")
        since, reason, mark = found.get("since"), found.get("reason"), found.get("watermark")
        if not (isinstance(since, int | float) and _is_time(since) and isinstance(reason, str)):
            raise ValueError(f"{shown(raw)}, not a pause record")
        if mark is not None and (
            not isinstance(mark, int) or isinstance(mark, bool) or _slot_or_none(str(mark)) is None
        ):
            raise ValueError(f"{shown(raw)}, not a pause record (watermark)")
        return cls(float(since), reason, mark)


@dataclass(frozen=True, slots=True)
class PauseOutcome:
    """What `pause_jobs` did to one job: paused it now, or found it paused already (the
    record is the one of that earlier pause)."""

    job: str
    record: PauseRecord
    already: bool


@dataclass(frozen=True, slots=True)
class ResumeOutcome:
    """What `resume_jobs` found for one job: whether it was paused, its pause record (None
    when there was none; `problem` says why when one was there but unreadable) and its
    watermark at the resume."""

    job: str
    was_paused: bool
    record: PauseRecord | None
    watermark_s: int | None
    problem: str | None = None


def pause_jobs(
    client: redis.Redis, keys: Keys, jobs: Sequence[str], reason: str
) -> list[PauseOutcome]:
    """Pause `jobs` (one transaction); a job paused already keeps its record. Raises
    StoreUnavailable or StateCorrupt (a key of the wrong type: nothing written)."""
    names = list(dict.fromkeys(jobs))
    if not names:
        return []
    watched = (keys.paused, keys.pause_info, keys.watermarks)
    for _ in range(PAUSE_TRIES):
        with redis_errors("pausing jobs"), client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(*watched)  # type: ignore[no-untyped-call]
                _check_types(pipe, keys, "pausing jobs")
                seconds, micros = pipe.time()
                now_s = round(float(seconds) + micros / 1e6, 3)
                flags = pipe.smismember(keys.paused, names)
                records: list[bytes | None] = pipe.hmget(keys.pause_info, names)  # type: ignore[assignment]
                marks: list[bytes | None] = pipe.hmget(keys.watermarks, names)  # type: ignore[assignment]
                outcomes, writes = [], {}
                for name, flag, raw, mark in zip(names, flags, records, marks, strict=True):
                    earlier = _record_or_none(raw)
                    if flag and earlier is not None:
                        outcomes.append(PauseOutcome(name, earlier, already=True))
                        continue
                    record = PauseRecord(now_s, reason, _slot_or_none(mark))
                    writes[name] = record.to_json()
                    outcomes.append(PauseOutcome(name, record, already=bool(flag)))
                if writes:
                    pipe.multi()
                    pipe.sadd(keys.paused, *writes)
                    pipe.hset(keys.pause_info, mapping=writes)  # type: ignore[arg-type]
                    pipe.execute()
                return outcomes
            except redis.WatchError:
                continue
    raise StoreUnavailable(f"pausing jobs: the watermarks changed on each of {PAUSE_TRIES} tries")


def resume_jobs(
    client: redis.Redis, keys: Keys, jobs: Sequence[str], *, write: bool = True
) -> list[ResumeOutcome]:
    """Resume `jobs` in one MULTI, reading each one's pause record and watermark at that
    moment; with `write` False only read them (a preview, not atomic). Raises
    StoreUnavailable or StateCorrupt (a key of the wrong type: nothing written)."""
    names = list(dict.fromkeys(jobs))
    if not names:
        return []
    with redis_errors("resuming jobs"):
        _check_types(client, keys, "resuming jobs")
        pipe = client.pipeline(transaction=write)
        pipe.smismember(keys.paused, names)
        pipe.hmget(keys.pause_info, names)
        pipe.hmget(keys.watermarks, names)
        if write:
            pipe.srem(keys.paused, *names)
            pipe.hdel(keys.pause_info, *names)
        flags, records, marks = pipe.execute()[:3]
    outcomes = []
    for name, flag, raw, mark in zip(names, flags, records, marks, strict=True):
        record, problem = None, None
        if raw is not None:
            try:
                record = PauseRecord.parse(raw)
            except ValueError as exc:
                problem = f"{keys.pause_info} field {name} holds {exc}"
        watermark = _slot_or_none(mark)
        if mark is not None and watermark is None:
            problem = f"{keys.watermarks} field {name} holds {shown(mark)}, not a slot"
        outcomes.append(ResumeOutcome(name, bool(flag), record, watermark, problem))
    return outcomes


def read_pause_info(store: StateStore, jobs: Sequence[str]) -> Reading[dict[str, dict[str, Any]]]:
    """The pause record of each of `jobs` that has one: {since, reason, watermark}, for
    `jobs show` and `jobs list`; a garbled record is reported, never raised."""
    key = store.keys.pause_info
    raw, unreadable = store._hash(key, "reading pause records", jobs)  # same package
    result: dict[str, dict[str, Any]] = {}
    for job, value in raw.items():
        try:
            result[text(job)] = PauseRecord.parse(value).record()
        except ValueError as exc:
            unreadable.append(Unreadable(key, str(exc), text(job)))
    return Reading(result, unreadable)


def _check_types(client: Any, keys: Keys, doing: str) -> None:
    """StateCorrupt before anything is written when a key holds another type."""
    for name, expected in _EXPECTED.items():
        key = getattr(keys, name)
        found = client.type(key)
        found = found.decode() if isinstance(found, bytes) else str(found)
        if found not in ("none", expected):
            message = f"{doing}: {key} holds a {found}, not a {expected}"
            raise StateCorrupt(message, key=key, found=found)


def _record_or_none(raw: bytes | None) -> PauseRecord | None:
    if raw is None:
        return None
    try:
        return PauseRecord.parse(raw)
    except ValueError:
        return None


def _slot_or_none(raw: bytes | str | None) -> int | None:
    """A watermark as the claim script writes it (whole epoch seconds), or None."""
    if raw is None:
        return None
    value = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
    if not value.isdigit() or len(value) > 15 or int(value) > MAX_SLOT_S:
        return None
    return int(value)


def _is_time(value: float) -> bool:
    return not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= MAX_SLOT_S


@redis_errors("recording the slots skipped while paused")
def record_skipped_while_paused(
    client: redis.Redis, keys: Keys, job: str, first_s: int, last_s: int, count: int
) -> None:
    """One range (reason "paused") in the missed stream for the slots a job skipped while
    paused and did not catch up, so `history` and `jobs missed` show them with their reason."""
    fields = {"job": job, "first": first_s, "last": last_s, "count": count, "reason": "paused",
              "token": ""}  # fmt: skip
    client.xadd(keys.missed, fields, maxlen=STREAM_CAP, approximate=True)  # type: ignore[arg-type]
