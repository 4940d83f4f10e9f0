"""The records the pure core and the store exchange: claims, their answers, missed ranges.

Pure data: nothing here talks to Redis or Celery, so `policy` and `engine` can use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ClaimStatus(IntEnum):
    """What the claim script answered for one fire."""

    TAKEN_BY_OTHER = 0  # a slot at or below the watermark, claimed under another token
    CLAIMED = 1
    PAUSED = 2  # the job is paused: the watermark advanced, nothing was sent
    ALREADY_OURS = 3  # this token claimed it already (a resent claim)
    OUTBOX_FULL = 4  # not claimed: the outbox holds `outbox_max` entries
    CORRUPT = 5  # not claimed: a value this fire would read or write is not what we wrote
    FUTURE = 6  # not claimed: the slot is later than Redis TIME plus the allowed clock offset


class AdoptFlag(IntEnum):
    """How a new leader found a job's watermark."""

    EXISTING = 0
    STARTED_NOW = 1  # no watermark: a new job (or state lost) starts from now
    RESET_UNREADABLE = 2  # not an integer: restarted from now
    RESET_OUT_OF_RANGE = 3  # negative, or later than Redis TIME plus the clock offset


@dataclass(frozen=True, slots=True)
class FireClaim:
    """One slot to claim. `payload` is the message: LPUSHed to `queue_key` when that is set
    (same-Redis broker), else appended to the outbox (another broker). `more` holds the other
    messages of the fire (a group's members after the first) as (queue_key, payload): claimed
    with it, all or none."""

    job: str
    slot_s: int
    queue_key: str = ""
    payload: bytes = b""
    more: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class MissedRange:
    """Slots of one job that were not fired: a range, never one record per slot."""

    job: str
    first_s: int
    last_s: int
    count: int
    reason: str


@dataclass(frozen=True, slots=True)
class Corruption:
    """A value in Redis that is not what this package wrote: where, and what was found."""

    key: str
    found: str
    job: str | None = None  # None: the key serves every job (a wrong type at a shared key)

    def describe(self) -> str:
        where = f"job {self.job}: " if self.job is not None else ""
        return f"{where}key {self.key} holds {self.found}"


@dataclass(frozen=True, slots=True)
class ClaimReply:
    """The claim script's answer: a status per fire (a ClaimStatus value), and what made a fire
    CORRUPT."""

    statuses: list[int]
    corrupt: list[Corruption]
