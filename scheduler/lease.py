"""Leadership: one lease in Redis, taken with a fencing token and kept by token-checked Lua.

The node enforces its own deadline, counted from when a renewal was *sent*: if Redis does not
answer in time, the node stops dispatching even though Redis might still show it as leader.
Safety does not rest on that timing: every claim checks the lease value inside Redis.

Every Redis call here raises StoreUnavailable or StateCorrupt, never a redis-py error. What
other hands left at the lease or fence key is never fatal: acquire.lua rewrites an unreadable
fence above every token it knows of, and lets an unreadable lease expire after one lease TTL.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis

from scheduler.clock import Clock
from scheduler.errors import SchedulerError, StateCorrupt, StoreUnavailable
from scheduler.store.failures import redis_errors
from scheduler.store.keys import Keys
from scheduler.store.scripts import register

log = logging.getLogger(__name__)

# Keep a margin below the TTL, for clock-rate drift between us and Redis.
DEADLINE_SHARE = 0.9
# Wake-ups pushed on release: enough for every standby of a normal cluster.
HANDOVER_WAKEUPS = 16
# Lua numbers are doubles: acquire.lua hands out no token it could not add 1 to exactly.
MAX_TOKEN = 2**53 - 1
# The keeper loops several times a second; the same failure is logged again only this often.
REPEAT_LOG_S = 60.0

# The same grammar as acquire.lua's parse(): bytes patterns make \S mean Lua's %S (ASCII).
_LEASE_VALUE = re.compile(rb"([0-9]{1,16}) (\S+) (.+)", re.DOTALL)
_LEADING_TOKEN = re.compile(rb"([0-9]{1,16}) ")


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """The lease as Redis shows it."""

    token: int
    nonce: str
    node_id: str
    left_ms: int

    @classmethod
    def parse(cls, value: bytes | str, left_ms: int) -> LeaseHolder | None:
        """None for anything that is not a lease value acquire.lua could have written."""
        raw = value.encode(errors="replace") if isinstance(value, str) else value
        match = _LEASE_VALUE.fullmatch(raw)
        if match is None or int(match[1]) > MAX_TOKEN:
            return None
        nonce, node_id = (part.decode(errors="replace") for part in match.group(2, 3))
        return cls(int(match[1]), nonce, node_id, left_ms)


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
        # For /metrics: renewals that extended the lease, and those that failed or found it
        # gone (counted by the keeper thread only; read by the metrics thread).
        self.renewals = 0
        self.renewal_failures = 0
        # The largest token this process has seen, ours or another node's: should the fence
        # become unreadable, the next token still goes above it.
        self._seen_token = 0
        # What was last reported about an unreadable lease key, so each finding is logged once.
        self._reported: tuple[str, bytes] | None = None
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
        with redis_errors("taking the lease"):
            reply = self._acquire(
                keys=[self.keys.lease, self.keys.fence],
                args=[self.node_id, self.nonce, self.ttl_ms, self._seen_token],
            )
        match reply:
            case [1, bytes(value), bytes(fence_type), bytes(fence_sample)]:
                holder = LeaseHolder.parse(value, self.ttl_ms)
                if holder is None or holder.nonce != self.nonce:
                    raise StateCorrupt(f"acquire.lua replied {value!r}, not a lease of ours")
                if fence_type:
                    log.warning(
                        "fence key %s held %s, not a fencing token; rewrote it as %d, "
                        "the new token",
                        self.keys.fence,
                        _found(fence_type, fence_sample),
                        holder.token,
                    )
                self._took(value.decode(errors="replace"), holder.token, sent)
                return True
            case [0, bytes(value)]:
                other = LeaseHolder.parse(value, -1)
                if other is None:
                    raise StateCorrupt(f"acquire.lua named {value!r} as the lease holder")
                self._seen_token = max(self._seen_token, other.token)
                self._reported = None
                return False
            case [2, bytes(what), bytes(sample), int(left_ms), int(set_ms)]:
                self._unreadable_lease(what.decode(errors="replace"), sample, left_ms, set_ms)
                return False
        raise StateCorrupt(f"acquire.lua replied {reply!r}")

    def _took(self, value: str, token: int, sent: float) -> None:
        if self.value != value:
            log.info("leader now: node %s, fencing token %d", self.node_id, token)
        self.value, self.token = value, token
        self._seen_token = max(self._seen_token, token)
        self._reported = None
        self._deadline = sent + self.deadline_s

    def _unreadable_lease(self, what: str, sample: bytes, left_ms: int, set_ms: int) -> None:
        if what == "lease":
            leading = _LEADING_TOKEN.match(sample)
            if leading is not None and int(leading[1]) <= MAX_TOKEN:
                self._seen_token = max(self._seen_token, int(leading[1]))
        # Once found, the key expires within one lease TTL: later calls see it again with
        # less time left, which is no news unless the key had to be given a TTL once more.
        if (what, sample) == self._reported and set_ms == 0:
            return
        self._reported = (what, sample)
        if what == "lease":
            found = f"the lease value {_shown(sample)}"
        else:
            found = f"{_found(what.encode(), sample)}, not a lease value,"
        if left_ms < 0:
            ttl = "with no TTL"
        elif left_ms > self.ttl_ms:
            ttl = f"with a TTL of more than {self.ttl_ms} ms"
        else:
            ttl = f"expiring within {self.ttl_ms} ms"
        if set_ms > 0:
            then = f"set it to expire in {set_ms} ms, then the lease is taken as usual"
        else:
            then = "the lease is taken as usual once it expires"
        log.warning("lease key %s holds %s %s; %s", self.keys.lease, found, ttl, then)

    def renew(self) -> bool:
        """Extend the lease; False means it is gone (another node may hold it now)."""
        if self.value is None:
            return False
        sent = self.clock.monotonic()
        token = self.token  # the main loop may forget the lease while the renewal is out
        try:
            with redis_errors("renewing the lease"):
                renewed = self._renew(keys=[self.keys.lease], args=[self.value, self.ttl_ms])
        except SchedulerError:
            self.renewal_failures += 1
            raise
        if renewed:
            self.renewals += 1
            self._deadline = sent + self.deadline_s
            return True
        self.renewal_failures += 1
        log.warning("lease lost: fencing token %s is no longer current", token)
        self.forget()
        return False

    def release(self) -> bool:
        """Hand the lease over now rather than letting it expire (planned stop)."""
        if self.value is None:
            return False
        value = self.value
        self.forget()
        with redis_errors("releasing the lease"):
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
        with redis_errors("reading the lease TTL"):
            left_ms = int(self.client.pttl(self.keys.lease))
        if left_ms == -2:  # no lease at all
            return
        wait_s = max_wait_s if left_ms < 0 else min(max_wait_s, left_ms / 1000)
        if wait_s >= 0.01:
            with redis_errors("waiting for a lease handover"):
                self.client.blpop([self.keys.handover], timeout=wait_s)


def _shown(sample: bytes) -> str:
    return repr(sample.decode(errors="replace"))


def _found(kind: bytes, sample: bytes) -> str:
    """What a key held, for a log line: a string's text, else its type."""
    return _shown(sample) if kind == b"string" else f"a {kind.decode(errors='replace')}"


def read_holder(client: redis.Redis, keys: Keys) -> LeaseHolder | None:
    """Who holds the lease now, for `status`; None when nobody does, or when the lease key
    holds anything but a lease value. Raises StoreUnavailable only."""
    with redis_errors("reading the lease"), client.pipeline(transaction=False) as pipe:
        pipe.get(keys.lease)
        pipe.pttl(keys.lease)
        # A wrong-typed key makes GET fail on the server: that is "no holder", not an error.
        value, left_ms = pipe.execute(raise_on_error=False)
    if not isinstance(value, bytes) or not isinstance(left_ms, int):
        return None
    return LeaseHolder.parse(value, left_ms)


class _Repeats:
    """Which failures the keeper logged and when, so each kind is logged once a while."""

    def __init__(self, clock: Clock, every_s: float) -> None:
        self.clock = clock
        self.every_s = every_s
        self._kinds: dict[str, tuple[float, int]] = {}

    def log(self, kind: str, level: int, message: str, *args: Any, exc_info: bool = False) -> None:
        now = self.clock.monotonic()
        last = self._kinds.get(kind)
        if last is not None and now - last[0] < self.every_s:
            self._kinds[kind] = (last[0], last[1] + 1)
            return
        self._kinds[kind] = (now, 0)
        if last is not None and last[1]:
            message += " (%d more like it not logged in the last %.0f s)"
            args = (*args, last[1], now - last[0])
        log.log(level, message, *args, exc_info=exc_info)


def _failure_kind(exc: BaseException) -> str:
    """An exception's type and where it was raised: one bug, however often it happens."""
    where = ""
    trace = exc.__traceback__
    while trace is not None:
        where = f"{trace.tb_frame.f_code.co_filename}:{trace.tb_lineno}"
        trace = trace.tb_next
    return f"{type(exc).__qualname__} at {where}"


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

    It returns only when `stop` is set: any failure is logged (each kind once a while) and
    the loop goes on, since a dead keeper would leave this node a standby for good.
    """
    renew_every_s = lease.ttl_ms / 1000 / 3
    repeats = _Repeats(lease.clock, REPEAT_LOG_S)
    while not stop.is_set():
        try:
            if lease.value is not None:
                if not may_lead():
                    log.error("giving up the lease: this node may not lead now")
                    try:
                        lease.release()
                    finally:
                        changed.set()  # released or not, this node no longer leads
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
        except StoreUnavailable as exc:
            repeats.log("unavailable", logging.WARNING, "lease: Redis unavailable: %s", exc)
            stop.wait(standby_poll_s)
        except StateCorrupt as exc:
            repeats.log(f"corrupt {exc}", logging.ERROR, "lease: Redis state corrupt: %s", exc)
            stop.wait(standby_poll_s)
        except Exception as exc:  # noqa: BLE001 - logged with its traceback, by repeats.log
            repeats.log(
                _failure_kind(exc),
                logging.ERROR,
                "lease keeper: unexpected %s, carrying on",
                type(exc).__name__,
                exc_info=True,
            )
            stop.wait(standby_poll_s)
