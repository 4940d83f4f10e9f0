"""With RabbitMQ as the broker (state still in Redis), fired slots reach a stock Celery worker
under the deterministic task id, and every message carries the scheduler's headers.

Two queues of our own on the shared RabbitMQ: one a real worker consumes, one nobody does, so we
can read its messages as they were published. Both are deleted at the end.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue

from .harness import (
    SLOT_FORMAT,
    Cluster,
    celery_result,
    every_second,
    slot_soon,
    slot_text,
    task_id_for,
    wait_for_outcome,
    wait_until,
)

NAMESPACE = "it-rabbitmq"
MESSAGES_TO_READ = 3


def celery_queue(name: str) -> Queue:
    """The queue as Celery (worker and scheduler) declares it, so our declare agrees with theirs."""
    return Queue(name, Exchange(name, "direct"), routing_key=name)


def delete_queues(url: str, names: list[str]) -> None:
    with Connection(url, connect_timeout=5) as connection:
        channel = connection.default_channel
        for name in names:
            channel.queue_delete(name)
            channel.exchange_delete(name)


def queue_exists(url: str, name: str) -> bool:
    with Connection(url, connect_timeout=5) as connection:
        try:
            connection.default_channel.queue_declare(name, passive=True)
        except connection.channel_errors:
            return False
        return True


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_rabbitmq_broker_delivers_slots_with_headers_and_ids(
    cluster: Cluster, rabbitmq_url: str
) -> None:
    suffix = uuid.uuid4().hex[:8]
    worked = f"sched-test-{suffix}"  # a worker consumes this one
    parked = f"sched-test-{suffix}-parked"  # nobody does: we read it ourselves
    cluster.configure(
        namespace=NAMESPACE,
        lease_ttl="1s",
        extra_settings={"broker_url": rabbitmq_url},
        jobs={
            "greet": every_second("jobs.examples.hello", args=["rabbit"], queue=worked),
            "echo": every_second("jobs.examples.hello", args=["parked"], queue=parked),
        },
    )
    consumer = Connection(rabbitmq_url, connect_timeout=5)
    try:
        parked_queue = celery_queue(parked)(consumer.default_channel)
        parked_queue.declare()  # before the first publish, so we can read it from the start
        leader = cluster.bring_up("n1", worker_queue=worked)

        result = celery_result(
            task_id_for(NAMESPACE, "greet", slot_soon()),
            broker_url=rabbitmq_url,
            backend_url=cluster.redis_url,
        )
        assert result == "Hello, rabbit!"

        # The worker hook found the headers on the request and reported under that same id.
        record = wait_for_outcome(cluster.state(), NAMESPACE, "greet", "succeeded")
        assert SLOT_FORMAT.fullmatch(record["slot"])
        assert record["task_id"] == task_id_for(NAMESPACE, "greet", record["slot"])

        # The parked queue holds the messages exactly as the scheduler published them.
        received: list[Any] = []

        def read_some() -> bool:
            message = parked_queue.get(no_ack=True, accept=["json"])
            if message is not None:
                received.append(message)
            return len(received) >= MESSAGES_TO_READ

        wait_until(read_some, timeout_s=20, what=f"{MESSAGES_TO_READ} messages on {parked}")
    finally:
        cluster.children.kill_all()  # nothing may redeclare the queues after we delete them
        consumer.release()
        delete_queues(rabbitmq_url, [worked, parked])

    assert not [name for name in (worked, parked) if queue_exists(rabbitmq_url, name)]
    slots = []
    for message in received:
        headers = message.headers
        assert headers["scheduler_job"] == "echo"
        assert SLOT_FORMAT.fullmatch(headers["scheduler_slot"]), headers
        assert int(headers["scheduler_token"]) == leader.token
        assert headers["task"] == "jobs.examples.hello"
        expected_id = task_id_for(NAMESPACE, "echo", headers["scheduler_slot"])
        assert headers["id"] == expected_id
        assert message.properties["correlation_id"] == expected_id
        assert message.content_type == "application/json"  # never pickle
        args, kwargs, _embed = message.decode()
        assert (args, kwargs) == (["parked"], {})
        slots.append(headers["scheduler_slot"])
    # One node, one second apart, in order: every slot once, none skipped.
    first_s = int(datetime.fromisoformat(slots[0]).timestamp())
    assert slots == [slot_text(first_s + k) for k in range(len(slots))]


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_operator_fires_reach_rabbitmq_with_their_kind_and_ids(
    cluster: Cluster, rabbitmq_url: str
) -> None:
    """`trigger` and `backfill` publish through the configured broker (no node runs): the
    messages land on the job's queue with the scheduler's headers, their kind and ids."""
    parked = f"sched-test-{uuid.uuid4().hex[:8]}-operator"
    cluster.configure(
        namespace=NAMESPACE,
        extra_settings={"broker_url": rabbitmq_url},
        jobs={
            "echo": {"task": "jobs.examples.hello", "every": "1m", "args": ["op"], "queue": parked}
        },
    )
    consumer = Connection(rabbitmq_url, connect_timeout=5)
    try:
        queue = celery_queue(parked)(consumer.default_channel)
        queue.declare()
        triggered = cluster.cli("trigger", "echo", "--json")
        assert triggered.returncode == 0, triggered.stderr
        manual_id = json.loads(triggered.stdout)["task_id"]
        backfilled = cluster.cli(
            "backfill", "echo", "--from", "2026-01-01T00:00:00Z", "--to", "2026-01-01T00:02:00Z"
        )
        assert backfilled.returncode == 0, backfilled.stderr
        received: list[Any] = []

        def read_all() -> bool:
            message = queue.get(no_ack=True, accept=["json"])
            if message is not None:
                received.append(message)
            return len(received) >= 4

        wait_until(read_all, timeout_s=20, what=f"4 messages on {parked}")
    finally:
        consumer.release()
        delete_queues(rabbitmq_url, [parked])
    seen = [
        (m.headers["scheduler_kind"], m.headers["scheduler_slot"], m.headers["id"])
        for m in received
    ]
    assert seen[0][0] == "manual"
    assert seen[0][2] == manual_id
    assert manual_id != task_id_for(NAMESPACE, "echo", seen[0][1])
    assert seen[1:] == [
        ("backfill", slot, task_id_for(NAMESPACE, "echo", slot))
        for slot in ("2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z")
    ]
    assert all(m.decode()[0] == ["op"] for m in received)
