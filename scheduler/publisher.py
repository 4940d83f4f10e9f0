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
import binascii
import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

from kombu import Connection, Producer

from scheduler.connections import PUBLISH_RETRY
from scheduler.errors import LeaseLost, PublishFailed, SchedulerError
from scheduler.lease import Lease
from scheduler.messages import MessageFactory
from scheduler.ports import LeaderStore
from scheduler.wire import HEADER_JOB, HEADER_SLOT

log = logging.getLogger(__name__)

# Entries read and acknowledged per round trip.
DRAIN_BATCH = 200
# The publisher's broker connection gives up fast; the publisher retries on its next round.
BROKER_CONNECT_TIMEOUT_S = 2.0
# A leader checks the outbox at least this often (entries a former leader left, for one).
IDLE_CHECK_S = 0.5
# Longest pause between tries while the broker refuses.
MAX_PAUSE_S = 2.0
# How much of a quarantined entry its log line shows.
QUOTED_BYTES = 80


@dataclass(frozen=True, slots=True)
class _Outgoing:
    """An outbox entry read back into what kombu's publish needs."""

    queue: str
    payload: bytes | str
    arguments: dict[str, Any]


def _outgoing(raw: bytes) -> _Outgoing | str:
    """The entry as publish arguments, or why it is not a message this package wrote.

    Everything the publish reads is checked here, so a malformed entry is quarantined once
    instead of failing every publish (and blocking every entry behind it) forever.
    """
    try:
        text = raw.decode("utf-8")  # json.loads would guess UTF-16 or -32 from raw bytes
    except UnicodeDecodeError as exc:
        return f"not UTF-8: {exc.reason} at byte {exc.start}"
    try:
        message = json.loads(text)
    except ValueError as exc:
        return f"not JSON: {exc}"
    if not isinstance(message, dict):
        return f"JSON {type(message).__name__}, not an object"
    headers, properties, body = (message.get(k) for k in ("headers", "properties", "body"))
    if not isinstance(headers, dict):
        return "no headers object"
    for name in (HEADER_JOB, HEADER_SLOT):
        if not isinstance(headers.get(name), str):
            return f"no {name} header"
    if not isinstance(properties, dict):
        return "no properties object"
    route = properties.get("delivery_info") or {}
    if not isinstance(route, dict):
        return "delivery_info is not an object"
    queue, exchange = route.get("routing_key") or "celery", route.get("exchange") or ""
    if not (isinstance(queue, str) and isinstance(exchange, str)):
        return "routing_key or exchange is not a string"
    if not isinstance(body, str):
        return "body is not a string"
    payload: bytes | str = body
    if properties.get("body_encoding") == "base64":
        try:
            payload = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            return f"body is not base64: {exc}"
    texts = {
        name: message.get(name, default)
        for name, default in (("content-type", "application/json"), ("content-encoding", "utf-8"))
    }
    if not all(isinstance(value, str) for value in texts.values()):
        return "content-type or content-encoding is not a string"
    delivery_mode, priority = properties.get("delivery_mode", 2), properties.get("priority")
    if not isinstance(delivery_mode, int) or not isinstance(priority, int | None):
        return "delivery_mode or priority is not a number"
    ids = (properties.get("correlation_id"), properties.get("reply_to"))
    if not all(isinstance(value, str | None) for value in ids):
        return "correlation_id or reply_to is not a string"
    arguments = {
        "routing_key": queue,
        "exchange": exchange,
        "headers": headers,
        "content_type": texts["content-type"],
        "content_encoding": texts["content-encoding"],
        "delivery_mode": delivery_mode,
        "priority": priority,
        "correlation_id": ids[0],
        "reply_to": ids[1],
    }
    return _Outgoing(queue, payload, arguments)


class OutboxPublisher:
    def __init__(self, claims: LeaderStore, factory: MessageFactory) -> None:
        self.claims = claims
        self.factory = factory
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._declared: set[tuple[str, str]] = set()

    def drain(self, lease_value: str) -> int:
        """Publish the whole outbox in order; the number sent. An entry that cannot be read
        as a message is quarantined (`Keys.outbox_quarantine`), and the rest go on. Raises
        PublishFailed, LeaseLost, StateCorrupt or StoreUnavailable."""
        sent = 0
        while entries := self.claims.outbox_head(DRAIN_BATCH):
            done: list[bytes] = []
            try:
                for raw in entries:
                    ready = _outgoing(raw)
                    if isinstance(ready, str):
                        # Only the head can move: whatever was published before it goes first.
                        sent += self._ack(lease_value, done)
                        done = []
                        if not self._quarantine(lease_value, raw, ready):
                            break  # the outbox changed under us: read its head again
                        continue
                    self._publish(ready)
                    done.append(raw)
            except SchedulerError:  # the store's answer (LeaseLost...), not the broker's
                raise
            except Exception as exc:  # kombu raises many kinds; all mean "not accepted"
                self._drop_connection()
                self._ack(lease_value, done)
                raise PublishFailed(
                    f"broker did not accept an outbox entry ({len(entries) - len(done)}+ "
                    f"waiting): {exc}"
                ) from exc
            sent += self._ack(lease_value, done)
        return sent

    def _ack(self, lease_value: str, done: list[bytes]) -> int:
        if done:
            self.claims.outbox_ack(lease_value, done)
        return len(done)

    def _quarantine(self, lease_value: str, raw: bytes, why: str) -> bool:
        moved = self.claims.outbox_quarantine(lease_value, raw)
        if moved:
            log.error(
                "outbox: quarantined an entry that is not a message this package wrote (%s), "
                "moved to %s: %d bytes, %r",
                why,
                self.claims.keys.outbox_quarantine,
                len(raw),
                raw[:QUOTED_BYTES],
            )
        return moved

    def _publish(self, outgoing: _Outgoing) -> None:
        """Send one entry: the message as built at claim time, whatever this node's config."""
        producer = self._ensure_producer()
        route = (outgoing.arguments["exchange"], outgoing.queue)
        # Declared as the workers declare them (MessageFactory.queues_for): the first message
        # to a new queue, or through a named exchange no worker has bound yet, is kept.
        declare = [] if route in self._declared else self.factory.queues_for(*route)
        producer.publish(
            outgoing.payload,
            declare=declare,
            retry=True,
            retry_policy=PUBLISH_RETRY,
            **outgoing.arguments,
        )
        self._declared.add(route)

    def forget_declarations(self) -> None:
        """After a reload: the queues' declarations may have changed with the jobs."""
        self._declared = set()

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
