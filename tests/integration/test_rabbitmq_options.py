"""RabbitMQ as the broker, with real `scheduler run` nodes and real workers: two workers with
different names share one queue (both show up in history), a job routed through its own
exchange and routing key reaches the worker of its named queue, and a priority-9 fire
overtakes a backlog of priority-0 ones on a queue declared with x-max-priority.

Every queue and exchange is this test's own (a random suffix) on the shared RabbitMQ, deleted
at the end. The pure rule of which queues need more than Celery's default declaration is tested
first, without I/O.
"""

from __future__ import annotations

import re
import signal
import sys
import uuid
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from kombu import Connection, Exchange, Queue

from jobs.app import create_app
from jobs.settings import WorkerSettings
from scheduler.clock import utc
from scheduler.jobspec import JobSpec
from scheduler.queues import MAX_PRIORITY, QueueDeclaration, kombu_queue, queue_declarations
from scheduler.triggers import AtTrigger

from .harness import Child, Children, Cluster, every_second, wait_for_outcome, wait_until

NAMESPACE = "it-rabbitmq-options"
UNUSED = "redis://127.0.0.1:1/0"  # an app built only to read its queues never connects


def job(name: str, queue: str, **options: Any) -> JobSpec:
    return JobSpec(
        name=name, task="t", kind="at", schedule="", timezone=ZoneInfo("UTC"),
        trigger=AtTrigger(utc(0)), queue=queue, **options,
    )  # fmt: skip


# --- which queues the worker (and the scheduler) declare with more than the default --------


def test_plain_jobs_need_no_declaration() -> None:
    assert queue_declarations([job("a", "celery"), job("b", "reports")]) == ()


def test_a_priority_gives_the_queue_x_max_priority() -> None:
    found = queue_declarations([job("a", "urgent", priority=0), job("b", "urgent")])
    assert found == (QueueDeclaration("urgent", (("urgent", "urgent"),), MAX_PRIORITY),)
    queue = kombu_queue(found[0])
    assert (queue.exchange.name, queue.routing_key, queue.bindings) == ("urgent", "urgent", set())
    assert queue.queue_arguments == {"x-max-priority": 10}


def test_routed_jobs_bind_their_exchange_and_key_beside_the_default() -> None:
    found = queue_declarations(
        [
            job("daily", "reports", exchange="reports-x", routing_key="reports.daily"),
            job("weekly", "reports", exchange="reports-x", routing_key="reports.weekly"),
            job("again", "reports", exchange="reports-x", routing_key="reports.daily"),
            job("keyed", "other", routing_key="other.key"),
        ]
    )
    assert found == (
        QueueDeclaration("other", (("other", "other"), ("other", "other.key"))),
        QueueDeclaration(
            "reports",
            (
                ("reports", "reports"),
                ("reports-x", "reports.daily"),
                ("reports-x", "reports.weekly"),
            ),
        ),
    )
    # As our app holds it: the queue's own exchange and key (never Celery's "celery"
    # defaults, which would route the default queue's tasks here too), plus the jobs' own.
    app = create_app(
        WorkerSettings(redis_url=UNUSED, broker_url=UNUSED, namespace="t", queues=found)
    )
    queue = app.amqp.queues["reports"]
    assert (queue.exchange.name, queue.exchange.type, queue.routing_key) == (
        "reports", "direct", "reports",
    )  # fmt: skip
    assert queue.queue_arguments is None
    assert {(b.exchange.name, b.exchange.type, b.routing_key) for b in queue.bindings} == {
        ("reports-x", "direct", "reports.daily"),
        ("reports-x", "direct", "reports.weekly"),
    }


# --- real nodes and workers on RabbitMQ -------------------------------------------------------


@pytest.fixture
def names(rabbitmq_url: str, children: Children) -> Iterator[list[str]]:
    """Queue and exchange names the test adds to; all deleted at teardown, once every child
    is dead (a live node or worker would declare them again)."""
    created: list[str] = []
    yield created
    children.kill_all()
    with Connection(rabbitmq_url, connect_timeout=5) as connection:
        channel = connection.default_channel
        for name in created:
            channel.queue_delete(name)
            channel.exchange_delete(name)


def unique(names: list[str], label: str) -> str:
    name = f"sched-test-{uuid.uuid4().hex[:8]}-{label}"
    names.append(name)
    return name


def worker(cluster: Cluster, queue: str, name: str, *extra: str) -> Child:
    """A worker of our app on `queue` named `<name>.<random>@<host>` (see harness.start_worker)."""
    command = [
        sys.executable, "-m", "celery", "-A", "jobs", "worker",
        "--pool=solo", "--without-mingle", "--without-gossip", "--without-heartbeat",
        "-Q", queue, "-n", f"{name}.{uuid.uuid4().hex[:8]}@%h", "--loglevel=INFO", *extra,
    ]  # fmt: skip
    return cluster.children.start(name, command, cluster.env)


def history(cluster: Cluster, job_name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = cluster.cli_json("history", job_name, "-n", "200")
    return rows


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_two_named_workers_share_one_queue(
    cluster: Cluster, rabbitmq_url: str, names: list[str]
) -> None:
    queue = unique(names, "shared")
    cluster.configure(
        namespace=NAMESPACE,
        extra_settings={"broker_url": rabbitmq_url},
        jobs={"greet": every_second("jobs.examples.hello", args=["shared"], queue=queue)},
    )
    # One message at a time each, so RabbitMQ's round robin shows within a few fires.
    workers = [worker(cluster, queue, name, "--prefetch-multiplier=1") for name in ("a", "b")]
    for child in workers:
        cluster.wait_worker_ready(child)
    cluster.start_node("n1")
    cluster.wait_for_leader()

    def both_ran() -> list[dict[str, Any]] | None:
        done = [row for row in history(cluster, "greet") if row["outcome"] == "succeeded"]
        ran_on = {str(row["worker"]).split(".")[0] for row in done}
        return done if ran_on == {"a", "b"} else None

    done = cluster.wait_until(both_ran, timeout_s=30, what="runs on both workers in history")
    assert all(re.fullmatch(r"[ab]\.[0-9a-f]{8}@.+", row["worker"]) for row in done)
    # Shared, never duplicated: each slot ran on one of them, once.
    assert len({row["slot"] for row in done}) == len(done)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_job_routed_through_its_exchange_reaches_its_queue(
    cluster: Cluster, rabbitmq_url: str, names: list[str]
) -> None:
    queue = unique(names, "routed")
    exchange = unique(names, "exchange")
    spy = unique(names, "spy")  # bound to the same exchange and key: a copy of each message
    routing_key = "reports.daily"
    cluster.configure(
        namespace=NAMESPACE,
        extra_settings={"broker_url": rabbitmq_url},
        jobs={
            "daily": every_second(
                "jobs.examples.hello",
                args=["routed"],
                queue=queue,
                exchange=exchange,
                routing_key=routing_key,
            )
        },
    )
    with Connection(rabbitmq_url, connect_timeout=5) as connection:
        copies = Queue(spy, Exchange(exchange, "direct"), routing_key=routing_key)(
            connection.default_channel
        )
        copies.declare()
        consumer = worker(cluster, queue, "routed")
        cluster.wait_worker_ready(consumer)
        cluster.start_node("n1")
        cluster.wait_for_leader()
        wait_for_outcome(cluster.state(), NAMESPACE, "daily", "succeeded", timeout_s=30)
        message = wait_until(
            lambda: copies.get(no_ack=True, accept=["json"]),
            timeout_s=20,
            what=f"a copy of a fire on {spy}",
        )
    assert message.delivery_info["exchange"] == exchange
    assert message.delivery_info["routing_key"] == routing_key
    assert message.headers["scheduler_job"] == "daily"
    runs = [row for row in history(cluster, "daily") if row["outcome"] == "succeeded"]
    assert runs
    assert all(str(row["worker"]).startswith("routed.") for row in runs)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_priority_nine_overtakes_a_backlog_of_priority_zero(
    cluster: Cluster, rabbitmq_url: str, names: list[str]
) -> None:
    queue = unique(names, "priority")
    cluster.configure(
        namespace=NAMESPACE,
        extra_settings={"broker_url": rabbitmq_url},
        jobs={
            "low": every_second("jobs.examples.hello", args=["low"], queue=queue, priority=0),
            "high": {
                "task": "jobs.examples.hello",
                "every": "3s",
                "args": ["high"],
                "queue": queue,
                "priority": 9,
            },
        },
    )
    # No worker yet: the node builds a backlog, then stops, so the queue holds all of it.
    node = cluster.start_node("n1")
    cluster.wait_for_leader()
    with Connection(rabbitmq_url, connect_timeout=5) as connection:

        def depth() -> int:
            try:  # a channel of its own: a refused passive declare closes it
                declared = connection.channel().queue_declare(queue, passive=True)
            except connection.channel_errors:
                return 0  # not declared yet: the node declares it with its first publish
            return int(declared.message_count)

        cluster.wait_until(lambda: depth() >= 6, timeout_s=30, what=f"a backlog on {queue}")
        node.signal(signal.SIGTERM)
        assert node.wait_exit(timeout_s=15) == 0
        backlog = depth()
    # One message at a time: RabbitMQ hands over the highest priority waiting each time.
    consumer = worker(cluster, queue, "drain", "--prefetch-multiplier=1")

    def ran() -> list[str] | None:
        if not consumer.alive():
            raise RuntimeError(f"the worker exited early:\n{consumer.tail()}")
        order = re.findall(r"succeeded in [0-9.e-]+s: 'Hello, (\w+)!'", consumer.log_text())
        return order if len(order) == backlog else None

    order = cluster.wait_until(ran, timeout_s=30, what=f"the worker to run all {backlog}")
    assert "high" in order
    assert "low" in order
    assert order == sorted(order)  # "high" < "low": every high one ran before any low one


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_fires_routed_before_any_worker_declared_the_exchange_are_kept(
    cluster: Cluster, rabbitmq_url: str, names: list[str]
) -> None:
    queue = unique(names, "early")
    exchange = unique(names, "early-exchange")
    cluster.configure(
        namespace=NAMESPACE,
        extra_settings={"broker_url": rabbitmq_url},
        jobs={
            "early": every_second(
                "jobs.examples.hello", queue=queue, exchange=exchange, routing_key="early.key"
            )
        },
    )
    cluster.start_node("n1")
    cluster.wait_for_leader()
    with Connection(rabbitmq_url, connect_timeout=5) as connection:

        def depth() -> int | None:
            try:
                declared = connection.channel().queue_declare(queue, passive=True)
            except connection.channel_errors:
                return None
            return int(declared.message_count) or None

        # No worker has declared anything: the scheduler's own declaration must route them.
        cluster.wait_until(depth, timeout_s=6, what=f"fires kept on {queue}")
