"""Operator fires from the CLI: publish their Celery messages to the broker, record each one in
the history stream, and read back which slots were fired already.

No leader is needed: the message is the one a leader would send (`MessageFactory`: protocol
2, JSON, our headers, signed when a message key is configured), published with kombu to the
configured broker, with the `scheduler_kind` header and the fencing token "0" (no lease covers
it). A fire is recorded after the broker accepted it, so a failed publish is never recorded as
sent (a later backfill would skip it); a recorded-but-lost entry cannot happen, a sent-but-not-
recorded one only when Redis fails right then (the repeat carries the same task id).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import redis

from scheduler.config import Config
from scheduler.connections import PUBLISH_RETRY
from scheduler.errors import SchedulerError
from scheduler.jobspec import JobSpec
from scheduler.manual import Fire
from scheduler.store.claims import STREAM_CAP
from scheduler.store.failures import redis_errors
from scheduler.store.keys import Keys
from scheduler.store.state import MAX_SLOT_S

if TYPE_CHECKING:
    from kombu import Connection, Producer

log = logging.getLogger(__name__)

BROKER_CONNECT_TIMEOUT_S = 5.0
# Fires published, then recorded in one round trip.
RECORD_BATCH = 100
# The history stream is capped near STREAM_CAP (MAXLEN ~ may keep a little more).
HISTORY_SCAN_LIMIT = 2 * STREAM_CAP
_CHUNK = 1000
# History entries that fired a slot under its deterministic task id (no kind: scheduled).
_SLOT_FIRES = (None, b"scheduled", b"backfill", b"catchup")


class SendFailed(SchedulerError):
    """The broker refused a fire; `sent` fires before it were published and recorded."""

    def __init__(self, message: str, sent: int) -> None:
        super().__init__(message)
        self.sent = sent


class OperatorPublisher:
    """Publishes operator fires to the deployment's broker and records them in history."""

    def __init__(self, config: Config, client: redis.Redis) -> None:
        """Raises ConfigError when the message key file is unusable."""
        # Celery and kombu load only when something is sent: the other commands start fast.
        from scheduler.messages import MessageFactory  # noqa: PLC0415

        settings = config.scheduler
        self.client = client
        self.keys = Keys(settings.namespace)
        self.factory = MessageFactory.for_settings(settings)
        self.factory.use_jobs(config.jobs.values())
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._declared: set[tuple[str, str]] = set()

    def send(self, fires: Sequence[Fire], jobs: Mapping[str, JobSpec]) -> int:
        """Publish each fire, oldest first, recording each batch once the broker took it; the
        number sent. Raises SendFailed (the broker refused: the rest are not sent) or
        StoreUnavailable / StateCorrupt (recording in history failed)."""
        sent = 0
        for start in range(0, len(fires), RECORD_BATCH):
            batch = fires[start : start + RECORD_BATCH]
            published: list[Fire] = []
            try:
                for fire in batch:
                    self._publish(fire, jobs[fire.job])
                    published.append(fire)
            except SchedulerError:
                raise
            except Exception as exc:  # kombu raises many kinds; all mean "not accepted"
                self._record(published)
                sent += len(published)
                raise SendFailed(f"the broker did not accept a fire: {exc}", sent) from exc
            self._record(published)
            sent += len(published)
        return sent

    def _publish(self, fire: Fire, job: JobSpec) -> None:
        """Every message of the fire (a group's members too), each as the leader sends it."""
        producer = self._ensure_producer()
        messages: list[dict[str, Any]] = self.factory.operator_message_arguments(
            job, fire.slot_s, fire.task_id, fire.kind
        )
        for arguments in messages:
            # Declared as the workers declare them (MessageFactory.queues_for).
            route = (arguments["exchange"], arguments["routing_key"])
            declare = [] if route in self._declared else self.factory.queues_for(*route)
            producer.publish(declare=declare, retry=True, retry_policy=PUBLISH_RETRY, **arguments)
            self._declared.add(route)

    def _record(self, fires: Sequence[Fire]) -> None:
        if not fires:
            return
        with redis_errors("recording fires in history"):
            pipe = self.client.pipeline(transaction=False)
            for fire in fires:
                fields = {"job": fire.job, "slot": str(fire.slot_s), "token": "",
                          "kind": fire.kind, "task_id": fire.task_id}  # fmt: skip
                pipe.xadd(self.keys.history, fields, maxlen=STREAM_CAP, approximate=True)  # type: ignore[arg-type]
            pipe.execute()

    def _ensure_producer(self) -> Producer:
        if self._producer is None:
            from kombu import Producer  # noqa: PLC0415 (see __init__)

            connection = self.factory.app.connection_for_write(
                connect_timeout=BROKER_CONNECT_TIMEOUT_S
            )
            connection.transport_options["max_retries"] = 1
            self._connection = connection
            self._producer = Producer(connection.default_channel)
        return self._producer

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception:  # a broken connection may fail to close
                log.debug("closing the broker connection failed", exc_info=True)
        self._connection = self._producer = None
        self.factory.close()


def next_sequence(client: redis.Redis, keys: Keys) -> int:
    """The number of this `trigger` (INCR): its task id is its own."""
    with redis_errors("numbering the manual fire"):
        return int(client.incr(keys.manual_sequence))


def fired_slots(client: redis.Redis, keys: Keys, job: str) -> set[int]:
    """Slots of `job` the history stream says were fired under their own task id (scheduled,
    backfill or catch-up), newest HISTORY_SCAN_LIMIT entries. Entries this package did not
    write are ignored; a history key of another type raises StateCorrupt."""
    name = job.encode()
    found: set[int] = set()
    end, read = "+", 0
    with redis_errors("reading the history stream"):
        while read < HISTORY_SCAN_LIMIT:
            entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrevrange(  # type: ignore[assignment]
                keys.history, max=end, min="-", count=_CHUNK
            )
            if not entries:
                break
            read += len(entries)
            for _, fields in entries:
                if fields.get(b"job") != name or fields.get(b"kind") not in _SLOT_FIRES:
                    continue
                slot = fields.get(b"slot", b"")
                if slot.isdigit() and len(slot) <= 15 and int(slot) <= MAX_SLOT_S:
                    found.add(int(slot))
            end = "(" + entries[-1][0].decode()  # exclusive: older than the last one read
    return found


def reported_task_ids(client: redis.Redis, keys: Keys, job: str) -> set[str]:
    """Task ids a worker reported about for `job` (its reports stream, newest
    HISTORY_SCAN_LIMIT entries): they outlive the shared history stream's entries."""
    found: set[str] = set()
    with redis_errors("reading the worker reports"):
        if client.type(keys.reports(job)) not in (b"stream", b"none", "stream", "none"):
            return found  # not ours: `history` names it; the other checks still apply
        entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrevrange(  # type: ignore[assignment]
            keys.reports(job), count=HISTORY_SCAN_LIMIT
        )
    for _, fields in entries:
        ident = fields.get(b"task_id")
        if ident:
            found.add(ident.decode(errors="replace"))
    return found


def claimed_task_ids(client: redis.Redis, keys: Keys, task_ids: Sequence[str]) -> set[str]:
    """Of `task_ids`, those a worker's run-once claim says ran (or run)."""
    claimed: set[str] = set()
    with redis_errors("reading run claims"):
        for start in range(0, len(task_ids), _CHUNK):
            chunk = task_ids[start : start + _CHUNK]
            pipe = client.pipeline(transaction=False)
            for ident in chunk:
                pipe.exists(keys.run_claim(ident))
            flags = pipe.execute()
            claimed.update(ident for ident, flag in zip(chunk, flags, strict=True) if flag)
    return claimed
