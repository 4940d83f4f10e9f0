"""What operators read and change in Redis, and the nodes' heartbeats: watermarks, last fires,
paused jobs, missed ranges, node records. Values this package did not write are skipped or
shown as unreadable, never a crash; Redis failures come out as the project's errors."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import redis

from scheduler.errors import StateCorrupt
from scheduler.records import Corruption
from scheduler.store.failures import redis_errors
from scheduler.store.keys import Keys

T = TypeVar("T")

# The views read at most this many entries of one key: a key grown huge by mistake (or by
# someone else's program) must not hang the CLI or exhaust its memory.
MAX_ENTRIES = 10_000
# No value this package writes comes near this; a longer one is reported, never parsed.
MAX_VALUE_BYTES = 64 * 1024
# The newest instant the views can print (9999-12-31T23:59:59Z): later slots overflow datetime.
MAX_SLOT_S = 253_402_300_799
# Redis commands take this many names at a time, so one call never gets huge.
_CHUNK = 1000
# How much of a wrong value an operator is shown: enough to recognise it.
_SHOWN_CHARS = 60

_KINDS = {
    "string": "a string", "hash": "a hash", "list": "a list", "set": "a set",
    "zset": "a sorted set", "stream": "a stream",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A value a view could not read: the key (and field, or stream entry) and what it held."""

    key: str
    found: str
    field: str | None = None

    def describe(self) -> str:
        where = self.key if self.field is None else f"{self.key} field {self.field}"
        return f"{where} holds {self.found}"

    def record(self) -> dict[str, str]:
        result = {"key": self.key, "found": self.found}
        if self.field is not None:
            result["field"] = self.field
        return result


@dataclass(slots=True)
class Reading(Generic[T]):
    """What a view could read, and what it could not."""

    value: T
    unreadable: list[Unreadable] = field(default_factory=list)


def text(raw: bytes) -> str:
    """Bytes from Redis as text; bytes that are not UTF-8 stay visible (and distinct) as
    escapes instead of all becoming the same replacement character."""
    return raw.decode("utf-8", errors="backslashreplace")


def shown(raw: bytes | str) -> str:
    """A wrong value, quoted and cut short, for an operator to recognise; control characters
    are escaped the way `text` escapes bytes that are not UTF-8."""
    value = text(raw[: _SHOWN_CHARS * 4]) if isinstance(raw, bytes) else raw[: _SHOWN_CHARS * 4]
    cut = len(value) > _SHOWN_CHARS or len(raw) > _SHOWN_CHARS * 4
    value = "".join(c if c.isprintable() else repr(c)[1:-1] for c in value[:_SHOWN_CHARS])
    return f"'{value}'..." if cut else f"'{value}'"


def _kind(name: str) -> str:
    return _KINDS.get(name, f"a {name}")


def _json(raw: bytes) -> Any:
    """A JSON value, or ValueError; deep nesting and huge numbers are refused, not raised."""
    if len(raw) > MAX_VALUE_BYTES:
        raise ValueError(f"a value of {len(raw)} bytes")
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None
    except ValueError:
        raise ValueError(f"{shown(raw)}, not JSON") from None


def _slot(raw: bytes) -> int:
    """A slot (epoch seconds) the views can print, or ValueError."""
    if len(raw) > 20 or not raw.isdigit():
        raise ValueError
    slot = int(raw)
    if slot > MAX_SLOT_S:
        raise ValueError
    return slot


def _is_time(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value <= MAX_SLOT_S
    )


class StateStore:
    """Operator reads and controls of one deployment (namespace) in one Redis database."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    @redis_errors("reading Redis TIME")
    def server_time(self) -> float:
        seconds, micros = self.client.time()
        return float(seconds) + micros / 1e6

    @redis_errors("reading the outbox size")
    def outbox_size(self) -> int:
        return int(self.client.llen(self.keys.outbox))

    def read_outbox_size(self) -> Reading[int | None]:
        size, unreadable = self._read(self.keys.outbox, "list", "reading the outbox size",
                                      lambda: int(self.client.llen(self.keys.outbox)))  # fmt: skip
        return Reading(size, unreadable)

    # -- the tolerant reading layer under the views: a wrong type, a huge key or a garbled
    # value becomes an Unreadable naming the key; only Redis being unreachable raises.

    def _read(
        self, key: str, expected: str, doing: str, call: Callable[[], T]
    ) -> tuple[T | None, list[Unreadable]]:
        with redis_errors(doing):
            kind = self.client.type(key)
        name = text(kind) if isinstance(kind, bytes) else str(kind)
        if name not in ("none", expected):
            return None, [Unreadable(key, f"{_kind(name)}, not {_kind(expected)}")]
        try:
            with redis_errors(doing):
                return call(), []
        except StateCorrupt as exc:  # the key changed type since TYPE answered
            return None, [Unreadable(key, f"a value Redis refused to read ({exc})")]

    def _hash(
        self, key: str, doing: str, fields: Sequence[str] | None = None
    ) -> tuple[dict[bytes, bytes], list[Unreadable]]:
        """The hash at `key`: just `fields` when given, else its first MAX_ENTRIES entries."""
        problems: list[Unreadable] = []

        def pick() -> dict[bytes, bytes]:
            assert fields is not None
            found: dict[bytes, bytes] = {}
            for start in range(0, len(fields), _CHUNK):
                names = list(fields[start : start + _CHUNK])
                values: list[bytes | None] = self.client.hmget(key, names)  # type: ignore[assignment]
                found.update(
                    (name.encode(), value)
                    for name, value in zip(names, values, strict=True)
                    if value is not None
                )
            return found

        def scan() -> dict[bytes, bytes]:
            found: dict[bytes, bytes] = {}
            for name, value in self.client.hscan_iter(key, count=_CHUNK):
                if len(found) >= MAX_ENTRIES and name not in found:
                    problems.append(Unreadable(key, f"more than {MAX_ENTRIES} entries (the rest "
                                                    "are not read)"))  # fmt: skip
                    break
                found[name] = value
            return found

        raw, unreadable = self._read(key, "hash", doing, scan if fields is None else pick)
        return raw or {}, unreadable + problems

    # -- operator views and controls ---------------------------------------------------------

    @redis_errors("reading watermarks")
    def watermarks(self) -> dict[str, int]:
        raw: dict[bytes, bytes] = self.client.hgetall(self.keys.watermarks)  # type: ignore[assignment]
        result = {}
        for job, value in raw.items():
            try:
                result[text(job)] = int(value)
            except ValueError:
                continue
        return result

    def last_fires(self) -> dict[str, int]:
        return self.read_last_fires().value

    def read_last_fires(self, jobs: Sequence[str] | None = None) -> Reading[dict[str, int]]:
        """Each job's newest fired slot (of `jobs`, or all), from "<slot> <token>"."""
        key = self.keys.last_fire
        raw, unreadable = self._hash(key, "reading last fires", jobs)
        result = {}
        for job, value in raw.items():
            try:
                result[text(job)] = _slot(value.split(b" ", 1)[0])
            except ValueError:
                unreadable.append(Unreadable(key, f"{shown(value)}, not \"<slot> <token>\"",
                                             text(job)))  # fmt: skip
        return Reading(result, unreadable)

    def paused(self) -> set[str]:
        return self.read_paused().value

    def read_paused(self, jobs: Sequence[str] | None = None) -> Reading[set[str]]:
        """Which of `jobs` (or of the first MAX_ENTRIES members) are paused."""
        key = self.keys.paused
        problems: list[Unreadable] = []

        def pick() -> set[str]:
            assert jobs is not None
            found: set[str] = set()
            for start in range(0, len(jobs), _CHUNK):
                names = list(jobs[start : start + _CHUNK])
                flags = self.client.smismember(key, names)
                found.update(name for name, flag in zip(names, flags, strict=True) if flag)
            return found

        def scan() -> set[str]:
            found: set[str] = set()
            for member in self.client.sscan_iter(key, count=_CHUNK):
                if len(found) >= MAX_ENTRIES:
                    problems.append(Unreadable(key, f"more than {MAX_ENTRIES} members (the rest "
                                                    "are not read)"))  # fmt: skip
                    break
                found.add(text(member))
            return found

        names, unreadable = self._read(key, "set", "reading paused jobs",
                                       scan if jobs is None else pick)  # fmt: skip
        return Reading(names or set(), unreadable + problems)

    @redis_errors("pausing or resuming a job")
    def set_paused(self, job: str, paused: bool) -> None:
        if paused:
            self.client.sadd(self.keys.paused, job)
        else:
            self.client.srem(self.keys.paused, job)

    def read_outcomes(
        self, jobs: Sequence[str] | None = None
    ) -> Reading[dict[str, dict[str, Any]]]:
        """The newest outcome record of each job; a garbled one reads as outcome "unreadable"
        (the job did report something) and is reported."""
        key = self.keys.outcomes
        raw, unreadable = self._hash(key, "reading outcomes", jobs)
        result: dict[str, dict[str, Any]] = {}
        for job, value in raw.items():
            name = text(job)
            try:
                record = _json(value)
                if not isinstance(record, dict):
                    raise ValueError(f"{shown(value)}, not an outcome record")
                if not isinstance(record.get("outcome"), str | None):
                    raise ValueError(f"an outcome of {shown(str(record['outcome']))}, not a name")
            except ValueError as exc:
                unreadable.append(Unreadable(key, str(exc), name))
                record = {"outcome": "unreadable"}
            result[name] = record
        return Reading(result, unreadable)

    def missed(self, count: int = 100) -> list[dict[str, str]]:
        """Gaps still open (newest first), then the newest `count` recorded missed ranges."""
        return self.read_missed(count).value

    def read_missed(self, count: int = 100) -> Reading[list[dict[str, str]]]:
        gaps = self.read_open_gaps()
        recorded = self.read_recorded_missed(count)
        return Reading(gaps.value + recorded.value, gaps.unreadable + recorded.unreadable)

    def open_gaps(self) -> list[dict[str, str]]:
        return self.read_open_gaps().value

    def read_open_gaps(self) -> Reading[list[dict[str, str]]]:
        key = self.keys.missed_open
        raw, unreadable = self._hash(key, "reading open missed ranges")
        gaps = []
        for job, value in sorted(raw.items()):
            parts = value.split(b" ")
            try:
                if len(parts) != 4:
                    raise ValueError
                first, last, count, reason = parts
                _slot(first), _slot(last), _slot(count)
            except ValueError:
                unreadable.append(Unreadable(
                    key, f"{shown(value)}, not \"<first> <last> <count> <reason>\"", text(job)
                ))  # fmt: skip
                continue
            gaps.append(
                {"job": text(job), "first": text(first), "last": text(last),
                 "count": text(count), "reason": text(reason), "open": "yes"}
            )  # fmt: skip
        return Reading(gaps, unreadable)

    def recorded_missed(self, count: int = 100) -> list[dict[str, str]]:
        return self.read_recorded_missed(count).value

    def read_recorded_missed(self, count: int = 100) -> Reading[list[dict[str, str]]]:
        """The newest `count` (at most MAX_ENTRIES) missed ranges; an entry without a job or
        with first, last or count not a number is reported by its stream id."""
        key = self.keys.missed

        def newest() -> list[tuple[bytes, dict[bytes, bytes]]]:
            return self.client.xrevrange(key, count=max(1, min(count, MAX_ENTRIES)))  # type: ignore[return-value]

        entries, unreadable = self._read(key, "stream", "reading missed ranges", newest)
        records = []
        for entry_id, fields in entries or []:
            record = {text(k): text(v[:MAX_VALUE_BYTES]) for k, v in fields.items()}
            wrong = [
                name for name in ("first", "last", "count")
                if not _is_slot_text(fields.get(name.encode(), b""))
            ]  # fmt: skip
            if not fields.get(b"job"):
                wrong.insert(0, "job")
            if wrong:
                found = ", ".join(
                    f"{name} {shown(fields.get(name.encode(), b''))}" for name in wrong
                )
                unreadable.append(Unreadable(key, f"a missed range with {found}", text(entry_id)))
                continue
            records.append(record)
        return Reading(records, unreadable)

    @redis_errors("watching the state epoch")
    def epoch(self, candidate: str) -> bytes | None:
        """This dataset's epoch: `candidate` if none was written yet. When it changes, Redis
        lost this deployment's data."""
        self.client.set(self.keys.epoch, candidate, nx=True)
        return self.client.get(self.keys.epoch)  # type: ignore[return-value]

    @redis_errors("recording the state loss")
    def report_state_lost(self, report: dict[str, Any]) -> None:
        self.client.set(self.keys.state_lost, json.dumps(report), nx=True)

    def memory_policy(self) -> str:
        """Redis's maxmemory-policy; "unknown" where CONFIG is renamed or denied (managed Redis,
        ACLs). Raises StoreUnavailable when Redis cannot be reached."""
        try:
            with redis_errors("reading maxmemory-policy"):
                reply: dict[Any, Any] = self.client.config_get("maxmemory-policy")
        except StateCorrupt:  # an error reply to CONFIG: not allowed here, not our data
            return "unknown"
        value = next(iter(reply.values()), "unknown")
        return value.decode(errors="replace") if isinstance(value, bytes) else str(value)

    def state_lost(self) -> dict[str, Any] | None:
        return self.read_state_lost().value

    def read_state_lost(self) -> Reading[dict[str, Any] | None]:
        """The report a node left when it found that Redis had lost this deployment's data.
        The key holding anything at all means the loss was noticed, so a garbled report still
        reads as a report (noticed at an unknown time)."""
        key = self.keys.state_lost
        raw, unreadable = self._read(key, "string", "reading the state-lost report",
                                     lambda: self.client.get(key))  # fmt: skip
        if not isinstance(raw, bytes):
            return Reading(None, unreadable)
        try:
            report = _json(raw)
            if not isinstance(report, dict):
                raise ValueError(f"{shown(raw)}, not a state-lost report")
        except ValueError as exc:
            return Reading({"noticed_at": None}, [Unreadable(key, str(exc))])
        return Reading(report, unreadable)

    # -- node heartbeats ---------------------------------------------------------------------

    @redis_errors("writing this node's heartbeat")
    def heartbeat(self, node_id: str, record: dict[str, Any]) -> None:
        self.client.hset(self.keys.nodes, node_id, json.dumps(record, sort_keys=True))

    @redis_errors("removing node records")
    def forget_nodes(self, node_ids: Iterable[str]) -> None:
        ids = list(node_ids)
        if ids:
            self.client.hdel(self.keys.nodes, *ids)

    def nodes(self) -> dict[str, dict[str, Any]]:
        return self.read_nodes().value

    def read_nodes(self) -> Reading[dict[str, dict[str, Any]]]:
        """Node heartbeats by node id; one without a usable `seen_at` cannot be placed in time,
        so it is reported instead of shown."""
        key = self.keys.nodes
        raw, unreadable = self._hash(key, "reading node records")
        result: dict[str, dict[str, Any]] = {}
        for node, value in raw.items():
            try:
                record = _json(value)
                if not isinstance(record, dict):
                    raise ValueError(f"{shown(value)}, not a heartbeat")
                if not _is_time(record.get("seen_at")):
                    raise ValueError(
                        f"a heartbeat with seen_at {shown(_plain_text(record.get('seen_at')))}, "
                        "not a time"
                    )
            except ValueError as exc:
                unreadable.append(Unreadable(key, str(exc), text(node)))
                continue
            result[text(node)] = record
        return Reading(result, unreadable)

    # -- quarantine: jobs the leader set aside because of a wrong value in Redis -------------

    @redis_errors("recording quarantined jobs")
    def quarantine(self, found: Sequence[Corruption], since_s: float) -> None:
        """Record these jobs as quarantined, with the key and value found (one HSET)."""
        records = {
            c.job: json.dumps({"key": c.key, "found": c.found, "since": round(since_s, 3)})
            for c in found
            if c.job is not None
        }
        if records:
            self.client.hset(self.keys.quarantine, mapping=records)  # type: ignore[arg-type]

    @redis_errors("releasing a quarantined job")
    def release_quarantine(self, jobs: Iterable[str]) -> None:
        names = list(jobs)
        if names:
            self.client.hdel(self.keys.quarantine, *names)

    def quarantined(self) -> dict[str, dict[str, Any]]:
        return self.read_quarantined().value

    def read_quarantined(
        self, jobs: Sequence[str] | None = None
    ) -> Reading[dict[str, dict[str, Any]]]:
        """Quarantined jobs with the key and the value found; an unreadable record still
        names its job (the job is not firing either way) and is reported."""
        key = self.keys.quarantine
        raw, unreadable = self._hash(key, "reading quarantined jobs", jobs)
        result: dict[str, dict[str, Any]] = {}
        for job, value in raw.items():
            name = text(job)
            try:
                record = _json(value)
                if not (
                    isinstance(record, dict)
                    and isinstance(record.get("key"), str)
                    and isinstance(record.get("found"), str)
                ):
                    raise ValueError(f"{shown(value)}, not a quarantine record")
            except ValueError as exc:
                problem = Unreadable(key, str(exc), name)
                unreadable.append(problem)
                record = {"key": key, "found": f"an unreadable record ({problem.found})",
                          "since": None}  # fmt: skip
            result[name] = record
        return Reading(result, unreadable)


def _is_slot_text(raw: bytes) -> bool:
    try:
        _slot(raw)
    except ValueError:
        return False
    return True


def _plain_text(value: Any) -> str:
    """A JSON value as text for a message; a huge number does not raise."""
    try:
        return json.dumps(value)
    except ValueError:  # an integer too long to print, or NaN/Infinity with allow_nan off
        return repr(value) if isinstance(value, float) else "a huge number"
