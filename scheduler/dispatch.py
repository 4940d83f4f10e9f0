"""From due slots to messages in the broker, under the fencing check.

Same Redis server for state and broker: the claim script also runs kombu's LPUSH, so claim and
enqueue are one atomic step and a slot is enqueued exactly once. Any other broker: the claim
comes first and the publish follows (a durable outbox between them is future work).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from kombu import Connection, Producer

from scheduler.engine import Due
from scheduler.messages import MessageFactory, slot_text
from scheduler.store.state import ClaimStatus, FireClaim, StateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Sent:
    """Counts of one dispatch, by what the claim said."""

    fired: int = 0
    paused: int = 0
    already: int = 0
    missed_ranges: int = 0


class Dispatcher:
    def __init__(self, store: StateStore, factory: MessageFactory, atomic: bool) -> None:
        self.store = store
        self.factory = factory
        self.atomic = atomic
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._declared: set[str] = set()

    def send(self, lease_value: str, token: int, due: Due) -> Sent:
        """Claim `due` under our lease and get each claimed slot's message to the broker.

        Raises LeaseLost (nothing of the refused chunk written) or a Redis/kombu error; a
        resend of the same `due` is safe: claims already made answer "already ours".
        """
        claims = []
        for job, slot_s in due.fires:
            if self.atomic:
                push = self.factory.redis_push(job, slot_s, token)
                claims.append(FireClaim(job.name, slot_s, push.key, push.payload))
            else:
                claims.append(FireClaim(job.name, slot_s))
        statuses = self.store.claim(lease_value, token, claims, due.missed)
        to_publish = [
            fire
            for fire, status in zip(due.fires, statuses, strict=True)
            if status in (ClaimStatus.CLAIMED, ClaimStatus.ALREADY_OURS)
        ]
        if not self.atomic and to_publish:
            self._publish(to_publish, token)
        for job, slot_s in to_publish:
            log.debug("fired %s at slot %s (token %d)", job.name, slot_text(slot_s), token)
        for gap in due.missed:
            log.warning(
                "missed %d slot(s) of %s from %s to %s (%s)",
                gap.count,
                gap.job,
                slot_text(gap.first_s),
                slot_text(gap.last_s),
                gap.reason,
            )
        return Sent(
            fired=statuses.count(ClaimStatus.CLAIMED),
            paused=statuses.count(ClaimStatus.PAUSED),
            already=statuses.count(ClaimStatus.ALREADY_OURS)
            + statuses.count(ClaimStatus.TAKEN_BY_OTHER),
            missed_ranges=len(due.missed),
        )

    def _publish(self, fires: list[Any], token: int) -> None:
        producer = self._ensure_producer()
        for job, slot_s in fires:
            arguments = self.factory.publish_arguments(job, slot_s, token)
            declare = []
            if job.queue not in self._declared:
                declare = [self.factory.queue(job.queue)]
            producer.publish(**arguments, declare=declare)
            self._declared.add(job.queue)

    def _ensure_producer(self) -> Producer:
        if self._producer is None:
            self._connection = self.factory.app.connection_for_write()
            self._producer = Producer(self._connection.default_channel)
        return self._producer

    def close(self) -> None:
        if self._connection is not None:
            self._connection.release()
        self._connection = self._producer = None
        self._declared.clear()
        self.factory.close()
