"""The worker hook's run-once claims: one atomic step per delivery of a fired task.

A claim lives at `Keys.run_claim(task_id)`; since a repeated fire has the same task id, the
claim is what tells a repeat from a first delivery. Every delivery allowed to run is appended
to the `Keys.executions` stream, so operators can count executions per (job, slot).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import IntEnum

import redis

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
        reply = self._claim(
            keys=[self.keys.run_claim(task_id), self.keys.executions],
            args=[retries, nonce, worker, _ms(started_ttl), job, slot, task_id, EXECUTIONS_CAP],
        )
        status = ClaimStatus(int(reply[0]))
        if status is not ClaimStatus.REPEAT:
            return ClaimReply(status)
        state, held, since_ms, held_by, ttl_ms = reply[1:6]
        return ClaimReply(
            status,
            HeldClaim(
                state=state.decode(),
                retries=int(held),
                since_ms=int(since_ms),
                worker=held_by.decode(errors="replace"),
                ttl_ms=max(int(ttl_ms), 0),
            ),
        )

    def finish(
        self, *, task_id: str, nonce: str, state: str, ttl: timedelta, retries: int, worker: str
    ) -> FinishStatus:
        """Mark the claim of attempt `nonce` RETRYING or DONE, with a new TTL."""
        if state not in (RETRYING, DONE):
            raise ValueError(f"a finished claim is {RETRYING} or {DONE}, got {state!r}")
        reply = self._finish(
            keys=[self.keys.run_claim(task_id)], args=[nonce, state, _ms(ttl), retries, worker]
        )
        return FinishStatus(int(reply))

    def release(self, *, task_id: str, nonce: str) -> bool:
        """Delete the claim if attempt `nonce` still holds it; whether it did."""
        return bool(self._release(keys=[self.keys.run_claim(task_id)], args=[nonce]))

    def read(self, task_id: str) -> str | None:
        """The claim's raw value ("<state> <retries> <since ms> <nonce> <worker>"), if any."""
        raw: bytes | None = self.client.get(self.keys.run_claim(task_id))  # type: ignore[assignment]
        return None if raw is None else raw.decode(errors="replace")

    def executions(self, newest: int = 1000) -> list[Execution]:
        """The newest `newest` executions, oldest first; entries we did not write are skipped."""
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
