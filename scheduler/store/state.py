"""The scheduler's state in Redis, as a few atomic, fencing-checked operations."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from scheduler.errors import LeaseLost
from scheduler.store.keys import Keys
from scheduler.store.scripts import register

# A claim script runs alone on the Redis server: keep each call short so the lease renewal of
# this node (and everybody's traffic) is never stuck behind one huge batch.
CLAIM_CHUNK = 1000
ADOPT_CHUNK = 5000
STREAM_CAP = 10_000


class ClaimStatus:
    TAKEN_BY_OTHER = 0
    CLAIMED = 1
    PAUSED = 2
    ALREADY_OURS = 3


class AdoptFlag:
    EXISTING = 0
    STARTED_NOW = 1
    RESET_UNREADABLE = 2


@dataclass(frozen=True, slots=True)
class FireClaim:
    """One slot to claim; `queue_key`/`payload` set when the claim also enqueues it."""

    job: str
    slot_s: int
    queue_key: str = ""
    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class MissedRange:
    """Slots of one job that were not fired: a range, never one record per slot."""

    job: str
    first_s: int
    last_s: int
    count: int
    reason: str


class StateStore:
    """Fencing-checked writes of one deployment (namespace) in one Redis database."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._adopt = register(client, "adopt")
        self._claim = register(client, "claim")

    def adopt(
        self, lease_value: str, now_s: int, jobs: Sequence[str]
    ) -> dict[str, tuple[int, int]]:
        """Watermark and AdoptFlag of each job; jobs without one start at `now_s`."""
        result: dict[str, tuple[int, int]] = {}
        for start in range(0, len(jobs), ADOPT_CHUNK):
            chunk = list(jobs[start : start + ADOPT_CHUNK])
            reply = self._adopt(
                keys=[self.keys.lease, self.keys.watermarks], args=[lease_value, now_s, *chunk]
            )
            if not reply[0]:
                raise LeaseLost("lease lost while reading watermarks")
            for index, job in enumerate(chunk):
                result[job] = (int(reply[1 + 2 * index]), int(reply[2 + 2 * index]))
        return result

    def claim(
        self,
        lease_value: str,
        token: int,
        fires: Sequence[FireClaim],
        missed: Sequence[MissedRange] = (),
    ) -> list[int]:
        """Claim (and maybe enqueue) fires, record missed ranges; a ClaimStatus per fire.

        Raises LeaseLost when the lease is no longer ours: nothing of that chunk was written.
        """
        statuses: list[int] = []
        keys = [
            self.keys.lease,
            self.keys.watermarks,
            self.keys.last_fire,
            self.keys.history,
            self.keys.missed,
            self.keys.paused,
            self.keys.paused_skips,
        ]
        pending_missed = list(missed)
        for start in range(0, max(len(fires), 1), CLAIM_CHUNK):
            chunk = fires[start : start + CLAIM_CHUNK]
            if not chunk and not pending_missed:
                break
            args: list[Any] = [lease_value, token, STREAM_CAP, len(pending_missed)]
            for gap in pending_missed:
                args += [gap.job, gap.first_s, gap.last_s, gap.count, gap.reason]
            args.append(len(chunk))
            for fire in chunk:
                args += [fire.job, fire.slot_s, fire.queue_key, fire.payload]
            reply = self._claim(keys=keys, args=args)
            if not reply[0]:
                raise LeaseLost("lease lost: claim refused by the fencing check")
            pending_missed = []
            statuses.extend(int(status) for status in reply[1:])
        return statuses

    # -- operator views and controls ---------------------------------------------------------

    def watermarks(self) -> dict[str, int]:
        raw: dict[bytes, bytes] = self.client.hgetall(self.keys.watermarks)  # type: ignore[assignment]
        result = {}
        for job, value in raw.items():
            try:
                result[job.decode()] = int(value)
            except ValueError:
                continue
        return result

    def last_fires(self) -> dict[str, int]:
        raw: dict[bytes, bytes] = self.client.hgetall(self.keys.last_fire)  # type: ignore[assignment]
        result = {}
        for job, value in raw.items():
            slot = value.split(b" ", 1)[0]
            if slot.isdigit():
                result[job.decode()] = int(slot)
        return result

    def paused(self) -> set[str]:
        members: set[bytes] = self.client.smembers(self.keys.paused)  # type: ignore[assignment]
        return {name.decode() for name in members}

    def set_paused(self, job: str, paused: bool) -> None:
        if paused:
            self.client.sadd(self.keys.paused, job)
        else:
            self.client.srem(self.keys.paused, job)

    def missed(self, count: int = 100) -> list[dict[str, str]]:
        entries: list[tuple[bytes, dict[bytes, bytes]]] = self.client.xrevrange(  # type: ignore[assignment]
            self.keys.missed, count=count
        )
        return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]

    # -- node heartbeats ---------------------------------------------------------------------

    def heartbeat(self, node_id: str, record: dict[str, Any]) -> None:
        self.client.hset(self.keys.nodes, node_id, json.dumps(record, sort_keys=True))

    def forget_nodes(self, node_ids: Iterable[str]) -> None:
        ids = list(node_ids)
        if ids:
            self.client.hdel(self.keys.nodes, *ids)

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
