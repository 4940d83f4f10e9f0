"""Published configs: each node writes its config's job fingerprints to Redis, so a standby and
`plan` can see which jobs the leader runs, not only that its config hash differs.

`Keys.config_jobs(hash)` is a hash job -> JSON fingerprint, plus one field that no job name
can be (`COMPLETE_FIELD`) written last: a config is published once that field is there, so a
reader never takes a half-written config (a node stopped mid-way) for the whole. Nodes running
the same config share the key: the first writes it, the others see it complete and only keep
its TTL fresh. Writing goes in chunks, a bounded time per call, so 100,000 jobs never hold up
a heartbeat nor Redis for long.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from scheduler.errors import StateCorrupt
from scheduler.jobspec import JobSpec
from scheduler.store.failures import redis_errors
from scheduler.store.keys import Keys
from scheduler.store.state import MAX_VALUE_BYTES, Unreadable, shown, text

# Job names match [A-Za-z0-9_.-]+: a field with parentheses can never be one.
COMPLETE_FIELD = "(complete)"
TTL_S = 7 * 24 * 3600
# Fields per HSET: small enough that one command never blocks Redis noticeably.
CHUNK = 1000
# More jobs than any config this package accepts in practice; a bigger key is not read whole.
MAX_JOBS = 1_000_000


class Publication:
    """Publishing one config's fingerprints, a chunk at a time: call `step` until it is done."""

    def __init__(
        self, client: redis.Redis, keys: Keys, config_hash: str, jobs: Mapping[str, JobSpec]
    ) -> None:
        self.client = client
        self.key = keys.config_jobs(config_hash)
        self.config_hash = config_hash
        self._jobs = jobs
        self._names: list[str] | None = None
        self._written = 0
        self.done = False

    def step(self, budget_s: float) -> bool:
        """Write chunks for about `budget_s` seconds of work (at least one); True once the
        config is published. Raises StoreUnavailable or StateCorrupt."""
        if self.done:
            return True
        started = time.perf_counter()
        if self._names is None:
            if self._complete():
                with redis_errors("refreshing the published config"):
                    self.client.expire(self.key, TTL_S)
                self.done = True
                return True
            self._names = sorted(self._jobs)
        while self._written < len(self._names):
            names = self._names[self._written : self._written + CHUNK]
            values = {
                name: json.dumps(self._jobs[name].fingerprint(), sort_keys=True, default=str)
                for name in names
            }
            self._write(values)
            self._written += len(values)
            more = self._written < len(self._names)
            if more and time.perf_counter() - started >= budget_s:
                return False
        marker = json.dumps({"jobs": len(self._jobs)})
        self._write({COMPLETE_FIELD: marker})
        self.done = True
        return True

    def _complete(self) -> bool:
        """Whether the key holds a whole publication; garbage there (of another type) is
        deleted: the key only ever holds what any node can write again."""
        with redis_errors("reading the published config"):
            kind = _type(self.client, self.key)
            if kind not in ("hash", "none"):
                self.client.delete(self.key)
                return False
            return bool(self.client.hexists(self.key, COMPLETE_FIELD))

    def _write(self, values: Mapping[str, str]) -> None:
        doing = "publishing the config's jobs"
        with redis_errors(doing), self.client.pipeline(transaction=False) as pipe:
            pipe.hset(self.key, mapping=values)  # type: ignore[arg-type]
            pipe.expire(self.key, TTL_S)
            pipe.execute()


@dataclass(slots=True)
class Published:
    """A config's published jobs as read: `jobs` is None unless the publication is complete
    (`state` says why: "absent", "incomplete", "unreadable")."""

    config_hash: str
    state: str
    jobs: dict[str, dict[str, Any]] | None = None
    unreadable: list[Unreadable] = field(default_factory=list)

    def missing(self) -> str:
        """Why its jobs cannot be shown, for people."""
        return {
            "absent": "not published",
            "incomplete": "only partly published",
            "unreadable": "unreadable",
        }.get(self.state, self.state)


def read_published(client: redis.Redis, keys: Keys, config_hash: str) -> Published:
    """The fingerprints published for `config_hash`; a garbled one is reported (the job is
    left out), a key of another type reads as unreadable. Raises StoreUnavailable only."""
    key = keys.config_jobs(config_hash)
    with redis_errors("reading a published config"):
        kind = _type(client, key)
    if kind == "none":
        return Published(config_hash, "absent")
    if kind != "hash":
        return Published(
            config_hash, "unreadable", None, [Unreadable(key, f"a {kind}, not a hash")]
        )
    try:
        with redis_errors("reading a published config"):
            raw = _scan(client, key)
    except StateCorrupt as exc:  # the key changed type since TYPE answered
        return Published(config_hash, "unreadable", None,
                         [Unreadable(key, f"a value Redis refused to read ({exc})")])  # fmt: skip
    if raw is None:
        found = f"more than {MAX_JOBS} entries"
        return Published(config_hash, "unreadable", None, [Unreadable(key, found)])
    marker = raw.pop(COMPLETE_FIELD.encode(), None)
    if marker is None:
        return Published(config_hash, "incomplete")
    jobs: dict[str, dict[str, Any]] = {}
    problems = []
    for name, value in raw.items():
        try:
            jobs[text(name)] = _fingerprint(value)
        except ValueError as exc:
            problems.append(Unreadable(key, str(exc), text(name)))
    return Published(config_hash, "published", jobs, problems)


def _type(client: redis.Redis, key: str) -> str:
    kind = client.type(key)
    return text(kind) if isinstance(kind, bytes) else str(kind)


def _scan(client: redis.Redis, key: str) -> dict[bytes, bytes] | None:
    found: dict[bytes, bytes] = {}
    for name, value in client.hscan_iter(key, count=CHUNK):
        if len(found) > MAX_JOBS:
            return None
        found[name] = value
    return found


def _fingerprint(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_VALUE_BYTES:
        raise ValueError(f"a value of {len(raw)} bytes")
    try:
        value = json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None
    except ValueError:
        raise ValueError(f"{shown(raw)}, not JSON") from None
    if not isinstance(value, dict):
        raise ValueError(f"{shown(raw)}, not a job's fingerprint")
    return value
