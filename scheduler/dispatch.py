"""From due slots to messages in the broker, under the fencing check.

Same Redis server for state and broker: the claim script also runs kombu's LPUSH, so claim and
enqueue are one atomic step and a slot is enqueued exactly once. Any other broker: the claim
comes first and the publish follows (a durable outbox between them is future work).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kombu import Connection, Producer

from scheduler.engine import Due
from scheduler.errors import PublishFailed
from scheduler.jobspec import JobSpec
from scheduler.messages import MessageFactory, slot_text
from scheduler.store.state import ClaimStatus, FireClaim, StateStore

# The dispatcher's own broker connection gives up fast: the node retries on its next tick, and
# a slot waiting to be published stays pending meanwhile.
BROKER_CONNECT_TIMEOUT_S = 2.0

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
        # Claimed but not yet accepted by the broker, oldest first: (job, slot, token).
        # Kept in memory only: a durable outbox is future work (see README).
        self.pending: dict[tuple[str, int], tuple[JobSpec, int, int]] = {}

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
        if not self.atomic:
            for job, slot_s in to_publish:
                self.pending.setdefault((job.name, slot_s), (job, slot_s, token))
            self.flush()
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

    def flush(self) -> None:
        """Publish pending slots in claim order; raise PublishFailed at the first refusal."""
        while self.pending:
            key = next(iter(self.pending))
            job, slot_s, token = self.pending[key]
            try:
                producer = self._ensure_producer()
                declare = [] if job.queue in self._declared else [self.factory.queue(job.queue)]
                producer.publish(
                    **self.factory.publish_arguments(job, slot_s, token), declare=declare
                )
            except Exception as exc:  # kombu raises many kinds; all mean "not sent"
                self._drop_connection()
                raise PublishFailed(
                    f"broker refused {job.name} at {slot_text(slot_s)} "
                    f"({len(self.pending)} pending): {exc}"
                ) from exc
            self._declared.add(job.queue)
            del self.pending[key]

    def _ensure_producer(self) -> Producer:
        if self._producer is None:
            connection = self.factory.app.connection_for_write(
                connect_timeout=BROKER_CONNECT_TIMEOUT_S
            )
            connection.transport_options["max_retries"] = 0
            self._connection = connection
            self._producer = Producer(connection.default_channel)
        return self._producer

    def _drop_connection(self) -> None:
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception:  # a broken connection may fail to close
                log.debug("closing a broken broker connection failed", exc_info=True)
        self._connection = self._producer = None
        self._declared.clear()

    def close(self) -> None:
        if self.pending:
            log.error(
                "%d claimed slot(s) were never accepted by the broker and are dropped: %s",
                len(self.pending),
                ", ".join(f"{job} {slot_text(slot)}" for job, slot in self.pending),
            )
            self.pending.clear()
        self._drop_connection()
        self.factory.close()
