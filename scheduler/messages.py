"""Celery messages for fires: protocol 2, JSON only, sent by task name, with our headers.

The scheduler never imports task code. Messages are built by Celery and kombu themselves, so a
stock worker reads them; for a Redis broker we also capture the exact Redis command kombu
would run (``LPUSH <queue> <payload>``) so a Lua script can run it together with the claim.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from celery import Celery
from kombu import Connection, Exchange, Producer, Queue

from scheduler.clock import utc
from scheduler.connections import kombu_broker
from scheduler.jobspec import JobSpec

HEADER_JOB = "scheduler_job"
HEADER_SLOT = "scheduler_slot"
HEADER_TOKEN = "scheduler_token"  # noqa: S105 (a fencing token, not a secret)


def slot_text(slot_s: int) -> str:
    """A slot as the headers and task ids write it: ISO 8601 UTC, whole seconds, "Z"."""
    return utc(slot_s).strftime("%Y-%m-%dT%H:%M:%SZ")


def task_id(namespace: str, job: str, slot_s: int) -> str:
    """Deterministic: sending the same fire again produces the same id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"scheduler://{namespace}/{job}/{slot_text(slot_s)}"))


@dataclass(frozen=True, slots=True)
class RedisPush:
    """The Redis command kombu would run to deliver one message: LPUSH key payload."""

    key: str
    payload: bytes


class _CapturedBatch:
    """Stands in for kombu's Redis publish batch: records the commands instead of sending them."""

    def __init__(self, channel: Any, key_prefix: str) -> None:
        self.channel = channel
        self.key_prefix = key_prefix
        self.commands: list[tuple[str, tuple[Any, ...]]] = []

    def publish(self, message: Any, **kwargs: Any) -> None:
        self.channel.basic_publish(message, _publish_batch=self, **kwargs)

    def add(self, name: str, *args: Any) -> None:
        self.commands.append((name, args))

    def flush(self) -> None:
        """Nothing to do: the caller sends the captured commands itself."""

    def discard(self) -> None:
        self.commands.clear()

    def close(self) -> None:
        """Nothing is held open."""


class MessageFactory:
    """Builds the Celery message of a fire, once per (job, slot, token)."""

    def __init__(self, namespace: str, broker_url: str, transport_options: dict[str, Any]) -> None:
        self.namespace = namespace
        broker_url, transport_options = kombu_broker(broker_url, dict(transport_options))
        if broker_url.split("://", 1)[0] in ("amqp", "pyamqp", "amqps"):
            # Wait for RabbitMQ's confirm: a claimed slot is published only once it is accepted.
            transport_options.setdefault("confirm_publish", True)
        self.app = Celery("scheduler", broker=broker_url, set_as_current=False)
        self.app.conf.update(
            task_serializer="json",
            accept_content=["json"],
            broker_transport_options=transport_options,
        )
        self.key_prefix = str(transport_options.get("global_keyprefix", ""))
        self._capture_connection: Connection | None = None
        self._capture_producer: Producer | None = None
        self._capture: _CapturedBatch | None = None

    def publish_arguments(self, job: JobSpec, slot_s: int, token: int) -> dict[str, Any]:
        """Keyword arguments for kombu's Producer.publish, as Celery's own send_task builds them."""
        ident = task_id(self.namespace, job.name, slot_s)
        message = self.app.amqp.as_task_v2(
            ident, job.task, args=list(job.args), kwargs=dict(job.kwargs), origin="scheduler"
        )
        headers = dict(message.headers)
        headers[HEADER_JOB] = job.name
        headers[HEADER_SLOT] = slot_text(slot_s)
        headers[HEADER_TOKEN] = str(token)
        return {
            "body": message.body,
            "routing_key": job.queue,
            "exchange": "",  # Celery also sends to a direct queue through the default exchange
            "headers": headers,
            "serializer": "json",
            "delivery_mode": 2,
            **message.properties,
        }

    def redis_push(self, job: JobSpec, slot_s: int, token: int) -> RedisPush:
        """The exact LPUSH kombu's Redis transport would run for this fire."""
        producer, capture = self._capturing_producer()
        with producer.batch():
            producer.publish(**self.publish_arguments(job, slot_s, token))
        commands, capture.commands = capture.commands, []
        pushes = [args for name, args in commands if name == "lpush"]
        if len(pushes) != 1 or len(commands) != 1:
            raise RuntimeError(f"kombu produced unexpected Redis commands: {commands!r}")
        key, payload = pushes[0]
        body = payload if isinstance(payload, bytes) else str(payload).encode()
        return RedisPush(self.key_prefix + str(key), body)

    def _capturing_producer(self) -> tuple[Producer, _CapturedBatch]:
        if self._capture_producer is None or self._capture is None:
            self._capture_connection = self.app.connection_for_write()
            channel = self._capture_connection.channel()
            capture = _CapturedBatch(channel, self.key_prefix)
            channel.create_publish_batch = lambda max_size: capture
            self._capture = capture
            self._capture_producer = Producer(channel, exchange=Exchange(""), auto_declare=False)
        return self._capture_producer, self._capture

    def queue(self, name: str) -> Queue:
        """The queue as Celery declares it, so the first publish to a new queue is not lost."""
        return Queue(name, Exchange(name, "direct"), routing_key=name)

    def close(self) -> None:
        if self._capture_connection is not None:
            self._capture_connection.release()
        self._capture_connection = self._capture_producer = self._capture = None
