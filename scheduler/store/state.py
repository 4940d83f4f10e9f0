"""The scheduler's state in Redis, as a few atomic, fencing-checked operations."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from scheduler.errors import LeaseLost
from scheduler.records import FireClaim, MissedRange
from scheduler.store.keys import Keys
from scheduler.store.scripts import register

# A claim script runs alone on the Redis server: keep each call short so the lease renewal of
# this node (and everybody's traffic) is never stuck behind one huge batch.
CLAIM_CHUNK = 1000
ADOPT_CHUNK = 5000
STREAM_CAP = 10_000


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A claimed slot waiting for the broker: stored as "<job> <slot> <token>"."""

    raw: bytes
    job: str
    slot_s: int
    token: int

    @classmethod
    def parse(cls, raw: bytes) -> OutboxEntry | None:
        """None for an entry this package did not write (garbage must not block the outbox)."""
        parts = raw.split(b" ")
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
            return None
        return cls(raw, parts[0].decode(errors="replace"), int(parts[1]), int(parts[2]))


class StateStore:
    """Fencing-checked writes of one deployment (namespace) in one Redis database."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._adopt = register(client, "adopt")
        self._claim = register(client, "claim")
        self._outbox_ack = register(client, "outbox_ack")

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
        outbox_cap: int = 0,
    ) -> list[int]:
        """Claim (and maybe enqueue) fires, record missed ranges; a ClaimStatus per fire.

        With `outbox_cap` > 0 each claimed slot is also appended to the outbox, and refused
        (OUTBOX_FULL) once the outbox holds that many. Raises LeaseLost when the lease is no
        longer ours: nothing of that chunk was written.
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
            self.keys.outbox,
            self.keys.missed_open,
        ]
        pending_missed = list(missed)
        for start in range(0, max(len(fires), 1), CLAIM_CHUNK):
            chunk = fires[start : start + CLAIM_CHUNK]
            if not chunk and not pending_missed:
                break
            args: list[Any] = [lease_value, token, STREAM_CAP, outbox_cap, len(pending_missed)]
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

    # -- the outbox (brokers other than this Redis) -----------------------------------------

    def outbox_head(self, count: int) -> list[bytes]:
        """The oldest `count` entries still waiting for the broker (see OutboxEntry.parse)."""
        return self.client.lrange(self.keys.outbox, 0, count - 1)  # type: ignore[return-value]

    def outbox_ack(self, lease_value: str, published: Sequence[bytes]) -> int:
        """Drop published entries from the outbox head; raises LeaseLost if not ours."""
        removed = int(
            self._outbox_ack(
                keys=[self.keys.lease, self.keys.outbox], args=[lease_value, *published]
            )
        )
        if removed < 0:
            raise LeaseLost("lease lost: outbox ack refused by the fencing check")
        return removed

    def outbox_size(self) -> int:
        return int(self.client.llen(self.keys.outbox))

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
        """Gaps still open (newest first), then the newest `count` recorded missed ranges."""
        return self.open_gaps() + self.recorded_missed(count)

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

    def recorded_missed(self, count: int = 100) -> list[dict[str, str]]:
        entries: list[tuple[bytes, dict[bytes, bytes]]] = self.client.xrevrange(  # type: ignore[assignment]
            self.keys.missed, count=count
        )
        return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]

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
