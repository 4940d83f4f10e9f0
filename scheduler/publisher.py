"""The outbox publisher: claimed slots to a broker other than the state's Redis.

A claim appends the slot's whole message to the outbox in Redis (durably, in the claim
script), so any node can publish it, whatever its own config holds (a rolling deploy); this
publisher sends them oldest first, waits for the broker to accept each one (RabbitMQ
publisher confirms), and only then removes them, under the fencing check. Whoever leads
drains what an earlier leader left. A repeat is possible only when a publisher dies or stalls
between publishing and removing; it carries the same task id, so the worker hook skips it.
"""

from __future__ import annotations

import base64
import logging
import threading

from kombu import Connection, Producer

from scheduler.errors import LeaseLost, PublishFailed, SchedulerError
from scheduler.lease import Lease
from scheduler.messages import MessageFactory
from scheduler.ports import LeaderStore
from scheduler.store.claims import OutboxEntry

log = logging.getLogger(__name__)

# Entries read and acknowledged per round trip.
DRAIN_BATCH = 200
# The publisher's broker connection gives up fast; the publisher retries on its next round.
BROKER_CONNECT_TIMEOUT_S = 2.0
# A leader checks the outbox at least this often (entries a former leader left, for one).
IDLE_CHECK_S = 0.5
# Longest pause between tries while the broker refuses.
MAX_PAUSE_S = 2.0


class OutboxPublisher:
    def __init__(self, claims: LeaderStore, factory: MessageFactory) -> None:
        self.claims = claims
        self.factory = factory
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._declared: set[str] = set()

    def drain(self, lease_value: str) -> int:
        """Publish the whole outbox in order; the number sent. Raises PublishFailed, LeaseLost
        or StoreUnavailable."""
        sent = 0
        while entries := self.claims.outbox_head(DRAIN_BATCH):
            done: list[bytes] = []
            try:
                for raw in entries:
                    self._publish(raw)
                    done.append(raw)
            except Exception as exc:  # kombu raises many kinds; all mean "not accepted"
                self._drop_connection()
                if done:
                    self.claims.outbox_ack(lease_value, done)
                raise PublishFailed(
                    f"broker did not accept an outbox entry ({len(entries) - len(done)}+ "
                    f"waiting): {exc}"
                ) from exc
            self.claims.outbox_ack(lease_value, done)
            sent += len(done)
        return sent

    def _publish(self, raw: bytes) -> None:
        """Send one entry: the message as built at claim time, whatever this node's config."""
        entry = OutboxEntry.parse(raw)
        if entry is None:
            log.error("outbox: dropping an entry this package did not write: %r", raw[:80])
            return
        message, properties = entry.message, entry.message["properties"]
        route = properties.get("delivery_info") or {}
        queue = str(route.get("routing_key") or "celery")
        body = entry.message["body"]
        payload = base64.b64decode(body) if properties.get("body_encoding") == "base64" else body
        producer = self._ensure_producer()
        declare = [] if queue in self._declared else [self.factory.queue(queue)]
        producer.publish(
            payload,
            routing_key=queue,
            exchange=str(route.get("exchange") or ""),
            headers=message["headers"],
            content_type=message.get("content-type", "application/json"),
            content_encoding=message.get("content-encoding", "utf-8"),
            delivery_mode=properties.get("delivery_mode", 2),
            priority=properties.get("priority"),
            correlation_id=properties.get("correlation_id"),
            reply_to=properties.get("reply_to"),
            declare=declare,
        )
        self._declared.add(queue)

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

    def run(self, lease: Lease, stop: threading.Event, work: threading.Event) -> None:
        """Drain the outbox whenever this node leads: after each claim (`work`), at least
        every IDLE_CHECK_S, and with a growing pause while the broker refuses."""
        pause_s = 0.0
        while not stop.is_set():
            work.wait(IDLE_CHECK_S)
            work.clear()
            value = lease.value
            if value is None or not lease.held():
                continue
            try:
                sent = self.drain(value)
                if pause_s and sent:
                    log.info("broker accepts messages again: %d outbox entries published", sent)
                pause_s = 0.0
            except PublishFailed as exc:
                pause_s = min(MAX_PAUSE_S, max(0.5, pause_s * 2))
                log.warning("%s; next try in %.1fs", exc, pause_s)
                stop.wait(pause_s)
            except LeaseLost:
                continue  # the lease keeper notices and steps down
            except SchedulerError as exc:  # Redis away, or a wrong type at the outbox key
                log.warning("outbox: %s", exc)
                stop.wait(0.5)
            except Exception:  # the thread must not die: log it and try again shortly
                log.exception("outbox: unexpected error; trying again")
                stop.wait(0.5)
        self.close()
        log.info("outbox publisher stopped")

    def close(self) -> None:
        self._drop_connection()
