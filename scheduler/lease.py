"""Leadership: one lease in Redis, taken with a fencing token and kept by token-checked Lua.

The node enforces its own deadline, counted from when a renewal was *sent*: if Redis does not
answer in time, the node stops dispatching even though Redis might still show it as leader.
Safety does not rest on that timing: every claim checks the lease value inside Redis.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import redis

from scheduler.clock import Clock
from scheduler.store.keys import Keys
from scheduler.store.scripts import register

log = logging.getLogger(__name__)

# Keep a margin below the TTL, for clock-rate drift between us and Redis.
DEADLINE_SHARE = 0.9
# Wake-ups pushed on release: enough for every standby of a normal cluster.
HANDOVER_WAKEUPS = 16


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """The lease as Redis shows it."""

    token: int
    nonce: str
    node_id: str
    left_ms: int

    @classmethod
    def parse(cls, value: bytes | str, left_ms: int) -> LeaseHolder | None:
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        parts = text.split(" ", 2)
        if len(parts) != 3 or not parts[0].isdigit():
            return None
        return cls(int(parts[0]), parts[1], parts[2], left_ms)


class Lease:
    """This process's view of the lease: whether it holds it, and until when at the latest."""

    def __init__(
        self, client: redis.Redis, keys: Keys, node_id: str, ttl: timedelta, clock: Clock
    ) -> None:
        self.client = client
        self.keys = keys
        self.node_id = node_id
        self.nonce = secrets.token_hex(8)
        self.ttl_ms = max(1, round(ttl.total_seconds() * 1000))
        self.clock = clock
        self.value: str | None = None
        self.token: int | None = None
        self._deadline = 0.0
        self._acquire = register(client, "acquire")
        self._renew = register(client, "renew")
        self._release = register(client, "release")

    @property
    def deadline_s(self) -> float:
        return self.ttl_ms / 1000 * DEADLINE_SHARE

    def held(self) -> bool:
        """True while our own deadline has not passed: the only test dispatch may use."""
        return self.value is not None and self.clock.monotonic() < self._deadline

    def try_acquire(self) -> bool:
        sent = self.clock.monotonic()
        ok, value = self._acquire(
            keys=[self.keys.lease, self.keys.fence], args=[self.node_id, self.nonce, self.ttl_ms]
        )
        if not ok:
            return False
        text = value.decode()
        holder = LeaseHolder.parse(text, self.ttl_ms)
        assert holder is not None, "acquire.lua returned a malformed lease value"
        if self.value != text:
            log.info("leader now: node %s, fencing token %d", self.node_id, holder.token)
        self.value, self.token = text, holder.token
        self._deadline = sent + self.deadline_s
        return True

    def renew(self) -> bool:
        """Extend the lease; False means it is gone (another node may hold it now)."""
        if self.value is None:
            return False
        sent = self.clock.monotonic()
        if self._renew(keys=[self.keys.lease], args=[self.value, self.ttl_ms]):
            self._deadline = sent + self.deadline_s
            return True
        log.warning("lease lost: fencing token %s is no longer current", self.token)
        self.forget()
        return False

    def release(self) -> bool:
        """Hand the lease over now rather than letting it expire (planned stop)."""
        if self.value is None:
            return False
        value = self.value
        self.forget()
        released = bool(
            self._release(
                keys=[self.keys.lease, self.keys.handover], args=[value, HANDOVER_WAKEUPS]
            )
        )
        if released:
            log.info("lease released by node %s", self.node_id)
        return released

    def forget(self) -> None:
        self.value, self.token, self._deadline = None, None, 0.0

    def wait_for_vacancy(self, max_wait_s: float) -> None:
        """Block until the lease may be free: its TTL runs out, or a release wakes us."""
        left_ms = int(self.client.pttl(self.keys.lease))
        if left_ms == -2:  # no lease at all
            return
        wait_s = max_wait_s if left_ms < 0 else min(max_wait_s, left_ms / 1000)
        if wait_s >= 0.01:
            self.client.blpop([self.keys.handover], timeout=wait_s)


def read_holder(client: redis.Redis, keys: Keys) -> LeaseHolder | None:
    """Who holds the lease now, for `status`; None when nobody does."""
    with client.pipeline(transaction=False) as pipe:
        pipe.get(keys.lease)
        pipe.pttl(keys.lease)
        value, left_ms = pipe.execute()
    if value is None:
        return None
    return LeaseHolder.parse(value, int(left_ms))


def keep(
    lease: Lease,
    stop: threading.Event,
    changed: threading.Event,
    may_lead: Callable[[], bool],
    standby_poll_s: float = 0.25,
) -> None:
    """The lease keeper's loop (its own thread and connection, so nothing waits before it).

    As leader: renew every third of the TTL; give the lease up when `may_lead()` turns false.
    As standby: take the lease when it is free and `may_lead()`, else wait for a vacancy.
    `changed` is set whenever leadership may have changed.
    """
    renew_every_s = lease.ttl_ms / 1000 / 3
    while not stop.is_set():
        try:
            if lease.value is not None:
                if not may_lead():
                    log.error("giving up the lease: this node may not lead now")
                    lease.release()
                    changed.set()
                elif not lease.renew():
                    changed.set()
                stop.wait(renew_every_s)
                continue
            if not may_lead():
                stop.wait(standby_poll_s)
            elif lease.try_acquire():
                changed.set()
            else:
                lease.wait_for_vacancy(standby_poll_s)
        except redis.RedisError as exc:
            log.warning("lease: redis unreachable: %s", exc)
            stop.wait(standby_poll_s)
