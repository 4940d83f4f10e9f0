"""What operators read and change in Redis, and the nodes' heartbeats: watermarks, last fires,
paused jobs, missed ranges, node records. Values this package did not write are skipped or
shown as unreadable, never a crash; Redis failures come out as the project's errors."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import redis

from scheduler.errors import StateCorrupt
from scheduler.records import Corruption
from scheduler.store.failures import redis_errors
from scheduler.store.keys import Keys


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

    # -- operator views and controls ---------------------------------------------------------

    @redis_errors("reading watermarks")
    def watermarks(self) -> dict[str, int]:
        raw: dict[bytes, bytes] = self.client.hgetall(self.keys.watermarks)  # type: ignore[assignment]
        result = {}
        for job, value in raw.items():
            try:
                result[job.decode(errors="replace")] = int(value)
            except ValueError:
                continue
        return result

    @redis_errors("reading last fires")
    def last_fires(self) -> dict[str, int]:
        raw: dict[bytes, bytes] = self.client.hgetall(self.keys.last_fire)  # type: ignore[assignment]
        result = {}
        for job, value in raw.items():
            slot = value.split(b" ", 1)[0]
            if slot.isdigit():
                result[job.decode(errors="replace")] = int(slot)
        return result

    @redis_errors("reading paused jobs")
    def paused(self) -> set[str]:
        members: set[bytes] = self.client.smembers(self.keys.paused)  # type: ignore[assignment]
        return {name.decode(errors="replace") for name in members}

    @redis_errors("pausing or resuming a job")
    def set_paused(self, job: str, paused: bool) -> None:
        if paused:
            self.client.sadd(self.keys.paused, job)
        else:
            self.client.srem(self.keys.paused, job)

    def missed(self, count: int = 100) -> list[dict[str, str]]:
        """Gaps still open (newest first), then the newest `count` recorded missed ranges."""
        return self.open_gaps() + self.recorded_missed(count)

    @redis_errors("reading open missed ranges")
    def open_gaps(self) -> list[dict[str, str]]:
        raw: dict[bytes, bytes] = self.client.hgetall(self.keys.missed_open)  # type: ignore[assignment]
        gaps = []
        for job, value in sorted(raw.items()):
            parts = value.decode(errors="replace").split(" ")
            if len(parts) == 4:
                first, last, count, reason = parts
                gaps.append(
                    {"job": job.decode(errors="replace"), "first": first, "last": last,
                     "count": count, "reason": reason, "open": "yes"}
                )  # fmt: skip
        return gaps

    @redis_errors("reading missed ranges")
    def recorded_missed(self, count: int = 100) -> list[dict[str, str]]:
        entries: list[tuple[bytes, dict[bytes, bytes]]] = self.client.xrevrange(  # type: ignore[assignment]
            self.keys.missed, count=count
        )
        return [
            {k.decode(errors="replace"): v.decode(errors="replace") for k, v in fields.items()}
            for _, fields in entries
        ]

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

    @redis_errors("reading the state-lost report")
    def state_lost(self) -> dict[str, Any] | None:
        """The report a node left when it found that Redis had lost this deployment's data."""
        raw = self.client.get(self.keys.state_lost)
        if raw is None:
            return None
        try:
            report = json.loads(raw)
        except ValueError:
            return {"noticed_at": None, "unreadable": True}
        return report if isinstance(report, dict) else {"noticed_at": None}

    # -- node heartbeats ---------------------------------------------------------------------

    @redis_errors("writing this node's heartbeat")
    def heartbeat(self, node_id: str, record: dict[str, Any]) -> None:
        self.client.hset(self.keys.nodes, node_id, json.dumps(record, sort_keys=True))

    @redis_errors("removing node records")
    def forget_nodes(self, node_ids: Iterable[str]) -> None:
        ids = list(node_ids)
        if ids:
            self.client.hdel(self.keys.nodes, *ids)

    @redis_errors("reading node records")
    def nodes(self) -> dict[str, dict[str, Any]]:
        raw: dict[bytes, bytes] = self.client.hgetall(self.keys.nodes)  # type: ignore[assignment]
        result: dict[str, dict[str, Any]] = {}
        for node, value in raw.items():
            try:
                record = json.loads(value)
            except ValueError:
                continue
            if isinstance(record, dict):
                result[node.decode(errors="replace")] = record
        return result

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

    @redis_errors("reading quarantined jobs")
    def quarantined(self) -> dict[str, dict[str, Any]]:
        """Quarantined jobs with the key and the value found; an unreadable record still
        names its job (as "unreadable"), since the job is not firing either way."""
        raw: dict[bytes, bytes] = self.client.hgetall(self.keys.quarantine)  # type: ignore[assignment]
        result: dict[str, dict[str, Any]] = {}
        for job, value in raw.items():
            try:
                record = json.loads(value)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                record = {"key": None, "found": "unreadable", "since": None}
            result[job.decode(errors="replace")] = record
        return result
