"""The store as the leader sees it: the few atomic, fencing-checked primitives it needs.

`scheduler.store.claims.Claims` is the Redis implementation; dispatch, the publisher and the
quarantine are written against this interface. Every primitive checks the lease inside the
store and raises LeaseLost when it is not ours, StoreUnavailable when the store cannot be
reached, StateCorrupt when a shared value is not what we wrote (with `key` and `found`), and
ClockSkew when the leader's clock is later than the store's allows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from scheduler.records import AdoptFlag, ClaimReply, FireClaim, MissedRange
from scheduler.store.keys import Keys


class LeaderStore(Protocol):
    keys: Keys

    def adopt(
        self, lease_value: str, now_s: int, jobs: Sequence[str]
    ) -> dict[str, tuple[int, AdoptFlag]]:
        """Each job's watermark; one without a readable watermark starts at `now_s`."""
        ...

    def claim(
        self,
        lease_value: str,
        token: int,
        fires: Sequence[FireClaim],
        missed: Sequence[MissedRange] = (),
        outbox_cap: int = 0,
    ) -> ClaimReply:
        """Claim fires (enqueueing or appending their messages) and record missed ranges."""
        ...

    def set_aside(self, lease_value: str, key: str, found: str) -> str | None:
        """Move a shared key of the wrong type out of the way; its new name."""
        ...

    def wait_for_replicas(self, replicas: int, timeout_ms: int) -> int:
        """How many replicas have every write so far, waiting up to `timeout_ms`."""
        ...

    def outbox_head(self, count: int) -> list[bytes]:
        """The oldest `count` messages still waiting for the broker."""
        ...

    def outbox_ack(self, lease_value: str, published: Sequence[bytes]) -> int:
        """Remove published messages from the outbox head; how many were removed."""
        ...

    def outbox_quarantine(self, lease_value: str, entry: bytes) -> bool:
        """Move an unreadable entry from the outbox head to the quarantine; False if the head
        was another entry (someone else moved it)."""
        ...
