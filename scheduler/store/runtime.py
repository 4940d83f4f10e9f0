"""Runtime jobs in Redis: a hash of job tables (`Keys.runtime_jobs`) and a counter that moves
with every change (`Keys.runtime_version`), written together by one script; the leader's
cheap watch of that counter; and the loader every command uses.

Reads are tolerant: a hash of the wrong type, or a value that does not validate, becomes a
line naming it, never an error that stops the other jobs. Only Redis being unreachable
raises (StoreUnavailable).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import redis

from scheduler.clock import Clock
from scheduler.config import Config
from scheduler.errors import SchedulerError, StateCorrupt
from scheduler.runtime import RuntimeJobs, encode, merge
from scheduler.store.failures import redis_errors
from scheduler.store.keys import Keys
from scheduler.store.scripts import register
from scheduler.store.state import StateStore, text

log = logging.getLogger(__name__)

# More runtime jobs than this are not read (and `jobs add` refuses more): a hash grown huge
# by mistake must not stall the leader's loop.
MAX_RUNTIME_JOBS = 10_000
# How often the leader looks at the version counter (a GET): a change is applied within this.
POLL_S = 0.5
_SCAN_COUNT = 1000


class Expect(Enum):
    """What a write requires to be stored under the job's name now."""

    ANY = "any"
    ABSENT = "absent"
    EQUAL = "equal"


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Whether the write happened; if not, whether a job of that name was there."""

    done: bool
    existed: bool


class RuntimeJobStore:
    """The runtime jobs of one deployment."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._write = register(client, "runtime_write")

    @redis_errors("reading the runtime jobs' version")
    def version(self) -> bytes | None:
        """The counter as stored (compared, never parsed: garbage there is a value too)."""
        value: bytes | None = self.client.get(self.keys.runtime_version)  # type: ignore[assignment]
        return value

    @redis_errors("reading a runtime job")
    def get(self, name: str) -> bytes | None:
        value: bytes | None = self.client.hget(self.keys.runtime_jobs, name)  # type: ignore[assignment]
        return value

    @redis_errors("counting runtime jobs")
    def count(self) -> int:
        """How many are stored (0 when the key is not a hash: the write then says so)."""
        key = self.keys.runtime_jobs
        kind = self.client.type(key)
        return int(self.client.hlen(key)) if kind in (b"hash", "hash") else 0

    def read(self) -> tuple[dict[str, bytes] | None, list[str]]:
        """Every stored table by name (at most MAX_RUNTIME_JOBS), and lines about what could
        not be read; None when the key holds something other than a hash."""
        key = self.keys.runtime_jobs
        with redis_errors("reading runtime jobs"):
            kind = self.client.type(key)
        kind_text = text(kind) if isinstance(kind, bytes) else str(kind)
        if kind_text not in ("none", "hash"):
            return None, [f"runtime jobs: key {key} holds a {kind_text}, not a hash; not read"]
        found: dict[str, bytes] = {}
        problems: list[str] = []
        try:
            with redis_errors("reading runtime jobs"):
                for name, value in self.client.hscan_iter(key, count=_SCAN_COUNT):
                    if len(found) >= MAX_RUNTIME_JOBS:
                        problems.append(
                            f"runtime jobs: more than {MAX_RUNTIME_JOBS} in {key}; the rest "
                            "are not read"
                        )
                        break
                    found[text(name)] = value
        except StateCorrupt as exc:  # the key changed type while it was read
            return None, [f"runtime jobs: key {key} could not be read ({exc})"]
        return found, problems

    def put(
        self, name: str, table: Mapping[str, Any], expect: Expect, current: bytes = b""
    ) -> WriteResult:
        """Store `table` under `name` if what is there now is as expected (`current` for
        Expect.EQUAL), moving the version in the same step."""
        return self._run(name, encode(table), expect, current)

    def remove(self, name: str, expect: Expect = Expect.ANY, current: bytes = b"") -> WriteResult:
        return self._run(name, "", expect, current)

    def _run(self, name: str, value: str, expect: Expect, current: bytes) -> WriteResult:
        keys = self.keys
        aside = keys.set_aside(keys.runtime_version, int(self.client_time_ms()))
        with redis_errors("writing a runtime job"):
            reply = self._write(
                keys=[keys.runtime_jobs, keys.runtime_version, keys.watermarks, aside],
                args=[name, value, expect.value, current],
            )
        if int(reply[0]) == 2:
            found = text(reply[2]) if isinstance(reply[2], bytes) else str(reply[2])
            raise StateCorrupt(
                f"key {keys.runtime_jobs} holds a {found}, not a hash of runtime jobs",
                keys.runtime_jobs,
                found,
            )
        return WriteResult(done=int(reply[0]) == 1, existed=bool(int(reply[1])))

    @redis_errors("reading Redis TIME")
    def client_time_ms(self) -> float:
        seconds, micros = self.client.time()
        return seconds * 1000 + micros / 1000


def load_runtime_jobs(
    source: RuntimeJobStore | StateStore | redis.Redis, keys: Keys, config: Config
) -> RuntimeJobs:
    """The runtime jobs in Redis, validated against `config`: for `jobs list`, `jobs show`,
    `history`, `next`. Raises StoreUnavailable when Redis cannot be reached."""
    store = _store(source, keys)
    stored, problems = store.read()
    result = merge(config, stored or {})
    result.problems[:0] = problems
    result.readable = stored is not None
    return result


def _store(source: RuntimeJobStore | StateStore | redis.Redis, keys: Keys) -> RuntimeJobStore:
    if isinstance(source, RuntimeJobStore):
        return source
    return RuntimeJobStore(source.client if isinstance(source, StateStore) else source, keys)


_UNSEEN = object()


class RuntimeWatch:
    """What a node knows of the runtime jobs: the stored tables of the last good read, and
    whether the version moved since. Redis failing keeps the last good tables."""

    def __init__(self, store: RuntimeJobStore, clock: Clock, poll_s: float = POLL_S) -> None:
        self.store = store
        self.clock = clock
        self.poll_s = poll_s
        self.stored: dict[str, bytes] = {}
        self.problems: list[str] = []
        self._version: object = _UNSEEN
        self._checked_at = -math.inf
        self._failing = False
        self._unapplied = False
        self._said: set[str] = set()

    def due_in(self) -> float:
        """Seconds until the next look at the version."""
        return max(0.0, self._checked_at + self.poll_s - self.clock.monotonic())

    def poll(self, force: bool = False) -> bool:
        """Look at the version (at most every poll_s; at once with `force`, which also
        re-reads) and re-read the tables when it moved. True when what was read differs
        from what the node knew (and always with `force`): it should merge them again."""
        now = self.clock.monotonic()
        if not force and now - self._checked_at < self.poll_s:
            return False
        self._checked_at = now
        try:
            version = self.store.version()
            if not force and version == self._version:
                return self._recovered(False)
            stored, problems = self.store.read()
        except SchedulerError as exc:
            if not self._failing:
                self._failing = True
                log.warning(
                    "runtime jobs: could not read them (%s); keeping the %d known", exc,
                    len(self.stored),
                )  # fmt: skip
            return False
        changed = problems != self.problems or (stored is not None and stored != self.stored)
        self._version, self.problems = version, problems
        if stored is not None:  # else the key is not a hash: the last good tables stay
            self.stored = stored
        changed, self._unapplied = changed or force or self._unapplied, False
        return self._recovered(changed)

    def forget_version(self) -> None:
        """Re-read at the next poll (a change could not be applied)."""
        self._checked_at = -math.inf
        self._version = _UNSEEN
        self._unapplied = True

    def say(self, lines: list[str]) -> None:
        """Log each line once while it holds (a value still broken is not repeated every
        re-read); a line that went away and came back is said again."""
        for line in lines:
            if line not in self._said:
                log.error("%s", line)
        self._said = set(lines)

    def _recovered(self, result: bool) -> bool:
        if self._failing:
            self._failing = False
            log.info("runtime jobs: readable again (%d)", len(self.stored))
        return result
