"""The leader's fencing-checked primitives in Redis: adopt watermarks, claim slots, drain
the outbox, set a corrupt key aside. Each is one Lua script that checks the lease first."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from scheduler.clock import Clock, SystemClock
from scheduler.errors import ClockSkew, LeaseLost, StateCorrupt
from scheduler.records import AdoptFlag, ClaimReply, Corruption, FireClaim, MissedRange
from scheduler.store.failures import redis_errors
from scheduler.store.keys import Keys
from scheduler.store.scripts import register

log = logging.getLogger(__name__)

# A claim script runs alone on the Redis server: keep each call short so the lease renewal of
# this node (and everybody's traffic) is never stuck behind one huge batch.
CLAIM_CHUNK = 1000
ADOPT_CHUNK = 5000
STREAM_CAP = 10_000
# Unreadable outbox entries kept for inspection (the newest).
QUARANTINE_CAP = 1000


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A claimed slot waiting for the broker: the message itself, as kombu's Redis transport
    writes it (JSON with body, headers, properties), so any node can publish it."""

    raw: bytes
    job: str
    slot: str
    message: dict[str, Any]

    @classmethod
    def parse(cls, raw: bytes) -> OutboxEntry | None:
        """None for an entry this package did not write (garbage must not block the outbox)."""
        try:
            message = json.loads(raw)
            headers = message["headers"]
            job, slot = headers["scheduler_job"], headers["scheduler_slot"]
            if not (isinstance(job, str) and isinstance(slot, str)):
                return None
            if not isinstance(message["body"], str) or not isinstance(message["properties"], dict):
                return None
        except (ValueError, KeyError, TypeError):
            return None
        return cls(raw, job, slot, message)


class Claims:
    """The leader's store in Redis (`scheduler.ports.LeaderStore`): adopt watermarks, claim
    slots, set a corrupt key aside, drain the outbox. Every Redis failure comes out as
    StoreUnavailable (transient), StateCorrupt (deterministic), LeaseLost or ClockSkew; never as
    a redis-py error."""

    def __init__(
        self, client: redis.Redis, keys: Keys, max_ahead_s: int = 1, clock: Clock | None = None
    ) -> None:
        self.client = client
        self.keys = keys
        self.clock = clock or SystemClock()
        # How far a slot may be ahead of Redis TIME (the allowed clock offset, whole seconds).
        self.max_ahead_s = max_ahead_s
        self._adopt = register(client, "adopt")
        self._claim = register(client, "claim")
        self._set_aside = register(client, "set_aside")
        self._outbox_ack = register(client, "outbox_ack")
        self._outbox_quarantine = register(client, "outbox_quarantine")

    def adopt(
        self, lease_value: str, now_s: int, jobs: Sequence[str]
    ) -> dict[str, tuple[int, AdoptFlag]]:
        """Watermark and AdoptFlag of each job; jobs without a readable one start at `now_s`."""
        result: dict[str, tuple[int, AdoptFlag]] = {}
        for start in range(0, len(jobs), ADOPT_CHUNK):
            chunk = list(jobs[start : start + ADOPT_CHUNK])
            with redis_errors("reading watermarks"):
                reply = self._adopt(
                    keys=[self.keys.lease, self.keys.watermarks, self.keys.missed],
                    args=[lease_value, now_s, self.max_ahead_s, STREAM_CAP, *chunk],
                )
            _check_fenced(reply, "reading watermarks")
            for index, job in enumerate(chunk):
                mark = int(reply[1 + 2 * index])
                result[job] = (mark, AdoptFlag(int(reply[2 + 2 * index])))
        return result

    def claim(
        self,
        lease_value: str,
        token: int,
        fires: Sequence[FireClaim],
        missed: Sequence[MissedRange] = (),
        outbox_cap: int = 0,
    ) -> ClaimReply:
        """Claim (and maybe enqueue) fires, record missed ranges; a ClaimStatus per fire.

        With `outbox_cap` > 0 each claimed slot's messages are appended to the outbox, and
        refused (OUTBOX_FULL) once the outbox holds that many entries (a group's fire is
        admitted whole while there is room for one: it may pass the cap by its size - 1).
        All or nothing per call: a wrong value of one job makes its fires CORRUPT (named in
        the reply), a wrong shared key raises StateCorrupt, a lost lease LeaseLost; nothing of
        that chunk is written. A fire's messages (`FireClaim.more`) share its status.
        """
        statuses: list[int] = []
        corrupt: list[Corruption] = []
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
            args: list[Any] = [
                lease_value, token, STREAM_CAP, outbox_cap, self.max_ahead_s, len(pending_missed)
            ]  # fmt: skip
            for gap in pending_missed:
                args += [gap.job, gap.first_s, gap.last_s, gap.count, gap.reason]
            args.append(len(chunk))
            extras: list[Any] = []
            for index, fire in enumerate(chunk, 1):
                args += [fire.job, fire.slot_s, fire.queue_key, fire.payload]
                if fire.more:  # a group's other members, after the fires (see claim.lua)
                    for queue_key, payload in fire.more:
                        extras += [index, queue_key, payload]
            args.append(len(extras) // 3)
            args += extras
            with redis_errors("claiming slots"):
                reply = self._claim(keys=keys, args=args)
            _check_fenced(reply, "claim")
            pending_missed = []
            # Plain ints (ClaimStatus compares equal): a burst spares an enum per fire.
            statuses.extend(reply[1])
            found = [part.decode(errors="replace") for part in reply[2]]
            for index in range(0, len(found), 3):
                job, key, what = found[index : index + 3]
                corrupt.append(Corruption(key, what, job))
            if int(reply[3]):
                log.error(
                    "refused %d missed range(s) later than Redis TIME plus %d s: this node's "
                    "clock is ahead",
                    int(reply[3]),
                    self.max_ahead_s,
                )
        return ClaimReply(statuses, corrupt)

    def set_aside(self, lease_value: str, key: str, found: str) -> str | None:
        """Move a shared key that holds the wrong type (`found`) out of the way, keeping its
        value for inspection; the name it now has, or None if it changed meanwhile."""
        target = self.keys.set_aside(key, int(self.clock.time() * 1000))
        with redis_errors(f"setting {key} aside"):
            reply = self._set_aside(keys=[self.keys.lease, key, target], args=[lease_value, found])
        if int(reply) < 0:
            raise LeaseLost("lease lost: setting a key aside refused by the fencing check")
        return target if int(reply) else None

    @redis_errors("waiting for a replica")
    def wait_for_replicas(self, replicas: int, timeout_ms: int) -> int:
        return int(self.client.wait(replicas, timeout_ms))

    # -- the outbox (brokers other than this Redis) -----------------------------------------

    def outbox_head(self, count: int) -> list[bytes]:
        """The oldest `count` entries still waiting for the broker (see OutboxEntry.parse)."""
        with redis_errors("reading the outbox"):
            return self.client.lrange(self.keys.outbox, 0, count - 1)  # type: ignore[return-value]

    def outbox_ack(self, lease_value: str, published: Sequence[bytes]) -> int:
        """Drop published entries from the outbox head; raises LeaseLost if not ours."""
        with redis_errors("removing published outbox entries"):
            removed = int(
                self._outbox_ack(
                    keys=[self.keys.lease, self.keys.outbox], args=[lease_value, *published]
                )
            )
        if removed < 0:
            raise LeaseLost("lease lost: outbox ack refused by the fencing check")
        return removed

    def outbox_quarantine(self, lease_value: str, entry: bytes) -> bool:
        """Move an unreadable entry off the outbox head into `Keys.outbox_quarantine`; False
        when the head is another entry. Raises LeaseLost, StateCorrupt (a key of the wrong
        type) or StoreUnavailable."""
        keys = [self.keys.lease, self.keys.outbox, self.keys.outbox_quarantine]
        with redis_errors("quarantining an outbox entry"):
            reply = self._outbox_quarantine(keys=keys, args=[lease_value, entry, QUARANTINE_CAP])
        _check_fenced(reply, "quarantining an outbox entry")
        return bool(int(reply[1]))

    def outbox_size(self) -> int:
        with redis_errors("reading the outbox size"):
            return int(self.client.llen(self.keys.outbox))


def _check_fenced(reply: list[Any], doing: str) -> None:
    """Raise for the answers every fenced script shares: not ours, a wrong type, a clock ahead."""
    status = int(reply[0])
    if status == 0:
        raise LeaseLost(f"lease lost: {doing} refused by the fencing check")
    if status == 2:
        key, found = (part.decode(errors="replace") for part in reply[1:3])
        raise StateCorrupt(f"{doing}: key {key} holds a {found}", key=key, found=found)
    if status == 3:
        raise ClockSkew(f"{doing}: this node's clock is ahead of Redis TIME ({int(reply[1])})")
