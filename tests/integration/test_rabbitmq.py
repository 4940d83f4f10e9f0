"""With RabbitMQ as the broker (state still in Redis), fired slots reach a stock Celery worker
under the deterministic task id, and every message carries the scheduler's headers.

Two queues of our own on the shared RabbitMQ: one a real worker consumes, one nobody does, so we
can read its messages as they were published. Both are deleted at the end.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.result import AsyncResult
from kombu import Connection, Exchange, Queue

from scheduler.store.outcomes import read_outcomes

from .harness import Children, Cluster, slot_text, task_id_for, wait_until, write_config

NAMESPACE = "it-rabbitmq"
SLOT_FORMAT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
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
    redis_server: Any, rabbitmq_url: str, children: Children, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    worked = f"sched-test-{suffix}"  # a worker consumes this one
    parked = f"sched-test-{suffix}-parked"  # nobody does: we read it ourselves
    config = write_config(
        tmp_path / "scheduler.toml",
        redis_url=redis_server.url,
        namespace=NAMESPACE,
        lease_ttl="1s",
        extra_settings={"broker_url": rabbitmq_url},
        jobs={
            "greet": {
                "task": "jobs.examples.hello",
                "every": "1s",
                "args": ["rabbit"],
                "queue": worked,
            },
            "echo": {
                "task": "jobs.examples.hello",
                "every": "1s",
                "args": ["parked"],
                "queue": parked,
            },
        },
    )
    cluster = Cluster(children, config)
    consumer = Connection(rabbitmq_url, connect_timeout=5)
    try:
        parked_queue = celery_queue(parked)(consumer.default_channel)
        parked_queue.declare()  # before the first publish, so we can read it from the start
        worker = cluster.start_worker(worked)
        cluster.start_node("n1")
        cluster.wait_worker_ready(worker)
        leader = cluster.wait_for_leader()
        token = int(leader["fencing_token"])

        # A slot safely after leadership began: a new job never fires slots from before that.
        slot = slot_text(int(time.time()) + 2)
        client_app = Celery("it-client", broker=rabbitmq_url, backend=redis_server.url)
        try:
            result = AsyncResult(task_id_for(NAMESPACE, "greet", slot), app=client_app)
            assert result.get(timeout=30) == "Hello, rabbit!"
        finally:
            client_app.close()

        # The worker hook found the headers on the request and reported under that same id.
        state = redis_server.client()

        def succeeded() -> dict[str, Any] | None:
            record = read_outcomes(state, NAMESPACE).get("greet")
            return record if record and record.get("outcome") == "succeeded" else None

        record = wait_until(succeeded, timeout_s=15, what="greet's outcome recorded")
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
        children.kill_all()  # nothing may redeclare the queues after we delete them
        consumer.release()
        delete_queues(rabbitmq_url, [worked, parked])

    assert not [name for name in (worked, parked) if queue_exists(rabbitmq_url, name)]
    slots = []
    for message in received:
        headers = message.headers
        assert headers["scheduler_job"] == "echo"
        assert SLOT_FORMAT.fullmatch(headers["scheduler_slot"]), headers
        assert int(headers["scheduler_token"]) == token
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
