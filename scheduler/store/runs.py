"""The worker hook's run-once claims: one atomic step per delivery of a fired task.

A claim lives at `Keys.run_claim(task_id)`; since a repeated fire has the same task id, the
claim is what tells a repeat from a first delivery. Every delivery allowed to run is appended
to the `Keys.executions` stream, so operators can count executions per (job, slot). A running
attempt keeps its "started" claim alive with `renew`, so that claim's TTL can be short.

Every call raises the package's own errors (`scheduler.store.failures.redis_errors`):
`StoreUnavailable` when Redis cannot serve now, `StateCorrupt` when a key holds something this
package did not write there (e.g. a hash at a claim key: WRONGTYPE), never `redis.RedisError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import IntEnum

import redis

from scheduler.errors import StateCorrupt
from scheduler.store.failures import redis_errors
from scheduler.store.keys import Keys
from scheduler.store.scripts import register

EXECUTIONS_CAP = 100_000  # entries kept in the executions stream (approximately: MAXLEN ~)

# Claim states, as written in the claim's value.
STARTED = "started"  # the attempt runs, or its worker died: bounded by the "started" TTL
RETRYING = "retrying"  # the attempt ended by asking for a retry (a higher retries count)
DONE = "done"  # the task ran to success or failure


class ClaimStatus(IntEnum):
    REPEAT = 0
    CLAIMED = 1
    ALREADY_OURS = 2
    CLAIMED_OVER_GARBAGE = 3


class FinishStatus(IntEnum):
    TAKEN_OVER = 0  # another delivery of the same attempt claimed it after ours expired
    UPDATED = 1
    EXPIRED = 2  # ours had expired, nobody claimed since: written afresh
    SUPERSEDED = 3  # a later attempt (our own retry) holds it already


class RenewStatus(IntEnum):
    TAKEN_OVER = 0  # another delivery of the same attempt holds it (ours expired first)
    RENEWED = 1
    REWRITTEN = 2  # ours had expired (or Redis lost it), nobody claimed since: written afresh
    FINISHED = 3  # ours, but no longer started: left alone
    SUPERSEDED = 4  # a later attempt (our own retry) holds it


@dataclass(frozen=True, slots=True)
class HeldClaim:
    """A claim as found in Redis by a delivery that may not run."""

    state: str
    retries: int
    since_ms: int  # Redis TIME of the claim's last change
    worker: str
    ttl_ms: int  # time left before it expires


@dataclass(frozen=True, slots=True)
class ClaimReply:
    status: ClaimStatus
    held: HeldClaim | None = None  # set for a REPEAT

    @property
    def may_run(self) -> bool:
        return self.status is not ClaimStatus.REPEAT


@dataclass(frozen=True, slots=True)
class Execution:
    """One entry of the executions stream: a delivery the hook let run."""

    entry_id: str
    job: str
    slot: str
    task_id: str
    worker: str
    retries: int


def _ms(delta: timedelta) -> int:
    ms = int(delta.total_seconds() * 1000)
    if ms < 1:
        raise ValueError(f"a claim TTL must be at least 1 ms, got {delta}")
    return ms


class RunClaims:
    """Run-once claims of one deployment (namespace) in one Redis database."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._claim = register(client, "run_claim")
        self._finish = register(client, "run_finish")
        self._release = register(client, "run_release")
        self._renew = register(client, "run_renew")

    def claim(
        self,
        *,
        task_id: str,
        job: str,
        slot: str,
        retries: int,
        nonce: str,
        worker: str,
        started_ttl: timedelta,
    ) -> ClaimReply:
        """Claim one delivery as "started" and log its execution, unless it is a repeat.

        Idempotent: re-sending a claim with the same `nonce` answers ALREADY_OURS.
        """
        ttl_ms = _ms(started_ttl)
        with redis_errors(f"claiming the run of task {task_id}"):
            reply = self._claim(
                keys=[self.keys.run_claim(task_id), self.keys.executions],
                args=[retries, nonce, worker, ttl_ms, job, slot, task_id, EXECUTIONS_CAP],
            )
        try:
            status = ClaimStatus(int(reply[0]))
            if status is not ClaimStatus.REPEAT:
                return ClaimReply(status)
            state, held, since_ms, held_by, left_ms = reply[1:6]
            return ClaimReply(
                status,
                HeldClaim(
                    state=state.decode(),
                    retries=int(held),
                    since_ms=int(since_ms),
                    worker=held_by.decode(errors="replace"),
                    ttl_ms=max(int(left_ms), 0),
                ),
            )
        except (TypeError, ValueError, IndexError, AttributeError) as exc:
            raise StateCorrupt(f"claiming the run of task {task_id}: reply {reply!r}") from exc

    def finish(
        self, *, task_id: str, nonce: str, state: str, ttl: timedelta, retries: int, worker: str
    ) -> FinishStatus:
        """Mark the claim of attempt `nonce` RETRYING or DONE, with a new TTL."""
        if state not in (RETRYING, DONE):
            raise ValueError(f"a finished claim is {RETRYING} or {DONE}, got {state!r}")
        ttl_ms = _ms(ttl)
        with redis_errors(f"finishing the run claim of task {task_id}"):
            reply = self._finish(
                keys=[self.keys.run_claim(task_id)], args=[nonce, state, ttl_ms, retries, worker]
            )
        return FinishStatus(int(reply))

    def renew(
        self, *, task_id: str, nonce: str, ttl: timedelta, retries: int, worker: str
    ) -> RenewStatus:
        """Give the "started" claim of attempt `nonce` a fresh `ttl`, if it still holds it.

        Never touches another delivery's claim, nor a finished one; a claim that has vanished
        (expired, or lost by Redis) while nobody claimed it since is written afresh.
        """
        ttl_ms = _ms(ttl)
        with redis_errors(f"renewing the run claim of task {task_id}"):
            reply = self._renew(
                keys=[self.keys.run_claim(task_id)], args=[nonce, ttl_ms, retries, worker]
            )
        return RenewStatus(int(reply))

    def release(self, *, task_id: str, nonce: str) -> bool:
        """Delete the claim if attempt `nonce` still holds it; whether it did."""
        with redis_errors(f"releasing the run claim of task {task_id}"):
            return bool(self._release(keys=[self.keys.run_claim(task_id)], args=[nonce]))

    def read(self, task_id: str) -> str | None:
        """The claim's raw value ("<state> <retries> <since ms> <nonce> <worker>"), if any."""
        with redis_errors(f"reading the run claim of task {task_id}"):
            raw: bytes | None = self.client.get(self.keys.run_claim(task_id))  # type: ignore[assignment]
        return None if raw is None else raw.decode(errors="replace")

    def executions(self, newest: int = 1000) -> list[Execution]:
        """The newest `newest` executions, oldest first; entries we did not write are skipped."""
        with redis_errors("reading the executions stream"):
            raw: list[tuple[bytes, dict[bytes, bytes]]] = self.client.xrevrange(  # type: ignore[assignment]
                self.keys.executions, count=newest
            )
        found = []
        for entry_id, fields in reversed(raw):
            text = {
                k.decode(errors="replace"): v.decode(errors="replace") for k, v in fields.items()
            }
            try:
                retries = int(text["retries"])
                found.append(
                    Execution(
                        entry_id.decode(),
                        text["job"],
                        text["slot"],
                        text["task_id"],
                        text["worker"],
                        retries,
                    )
                )
            except (KeyError, ValueError):
                continue
        return found
