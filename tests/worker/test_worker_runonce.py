"""Real Celery workers: the same scheduler message delivered twice runs once, a retry runs
again, and a worker killed after its claim is stood in for once that claim expires.

Messages are built by the scheduler's own MessageFactory, so they are byte for byte what a
leader sends; "the same fire twice" is what an outbox replay or a broker redelivery produces.
"""

from __future__ import annotations

import os
import signal
import sys
import uuid
from typing import Any

import pytest
from kombu import Connection

from scheduler.config import load_config
from scheduler.messages import MessageFactory
from scheduler.store.keys import Keys
from scheduler.store.outcomes import read_outcomes
from scheduler.store.runs import Execution, RunClaims
from scheduler.wire import slot_text, task_id
from tests.integration.harness import Child, Cluster, celery_result, wait_until
from tests.integration.test_rabbitmq import delete_queues, queue_exists

NAMESPACE = "wk-runonce"
SLOT_S = 1_800_000_000  # any slot: the worker side never looks at the clock
TOKEN = 7


def start_worker(cluster: Cluster, queue: str, name: str, app: str = "jobs") -> Child:
    """A solo-pool worker of `app` on `queue`, ready to consume."""
    command = [
        sys.executable, "-m", "celery", "-A", app, "worker",
        "--pool=solo", "--without-mingle", "--without-gossip", "--without-heartbeat",
        # A node name of its own: workers of other test runs share RabbitMQ's pidbox queues.
        "-Q", queue, "-n", f"{name}.{uuid.uuid4().hex[:8]}@%h", "--loglevel=INFO",
    ]  # fmt: skip
    worker = cluster.children.start(name, command, cluster.env)
    cluster.wait_worker_ready(worker)
    return worker


def factory_for(cluster: Cluster, broker_url: str) -> tuple[MessageFactory, Any]:
    return MessageFactory(NAMESPACE, broker_url, {}), load_config(cluster.config_path)


def push_redis(cluster: Cluster, job: str, times: int) -> str:
    """LPUSH the fire of `job` at SLOT_S `times` times, as the claim script would; its task id."""
    factory, config = factory_for(cluster, cluster.redis_url)
    try:
        push = factory.redis_push(config.jobs[job], SLOT_S, TOKEN)
    finally:
        factory.close()
    state = cluster.state()
    for _ in range(times):
        state.lpush(push.key, push.payload)
    return task_id(NAMESPACE, job, SLOT_S)


def publish_amqp(cluster: Cluster, url: str, job: str, queue: str, times: int) -> str:
    """Publish the fire of `job` at SLOT_S `times` times through kombu; its task id."""
    factory, config = factory_for(cluster, url)
    try:
        arguments = factory.publish_arguments(config.jobs[job], SLOT_S, TOKEN)
        with Connection(url, connect_timeout=5) as connection:
            producer = connection.Producer()
            for _ in range(times):
                producer.publish(**arguments, declare=[factory.queue(queue)])
    finally:
        factory.close()
    return task_id(NAMESPACE, job, SLOT_S)


def executions_of(cluster: Cluster, ident: str) -> list[Execution]:
    return [
        e for e in RunClaims(cluster.state(), Keys(NAMESPACE)).executions() if e.task_id == ident
    ]


def wait_for_log(worker: Child, text: str, timeout_s: float = 30.0) -> None:
    wait_until(
        lambda: text in worker.log_text(),
        timeout_s=timeout_s,
        what=f"{text!r} in the log of {worker.name}",
        interval_s=0.1,
        on_timeout=worker.tail,
    )


def job_table(task: str, queue: str, *args: object) -> dict[str, object]:
    # The schedule does not matter here: no node runs, the tests send the fires themselves.
    return {"task": task, "every": "1h", "queue": queue, "args": list(args)}


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_the_same_message_twice_runs_once(cluster: Cluster) -> None:
    queue = f"wk-once-{uuid.uuid4().hex[:8]}"
    cluster.configure(
        namespace=NAMESPACE, jobs={"greet": job_table("jobs.examples.hello", queue, "once")}
    )
    worker = start_worker(cluster, queue, "worker")
    ident = push_redis(cluster, "greet", times=2)

    result = celery_result(ident, broker_url=cluster.redis_url, backend_url=cluster.redis_url)
    assert result == "Hello, once!"
    wait_for_log(worker, f"skipped repeat of greet {slot_text(SLOT_S)}")

    [execution] = executions_of(cluster, ident)
    assert (execution.job, execution.slot, execution.retries) == ("greet", slot_text(SLOT_S), 0)
    assert execution.worker.startswith("worker.")
    assert worker.log_text().count(f"Task jobs.examples.hello[{ident}] succeeded") == 1
    # The skipped repeat reported nothing: the job's last outcome is still the run's.
    outcome = read_outcomes(cluster.state(), NAMESPACE)["greet"]
    assert (outcome["outcome"], outcome["task_id"]) == ("succeeded", ident)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_retry_runs_again_and_a_repeat_still_does_not(cluster: Cluster) -> None:
    queue = f"wk-retry-{uuid.uuid4().hex[:8]}"
    cluster.configure(
        namespace=NAMESPACE,
        jobs={"flaky": job_table("tests.worker.userapp.flaky", queue, "flaky")},
    )
    worker = start_worker(cluster, queue, "worker", app="tests.worker.userapp")
    ident = push_redis(cluster, "flaky", times=2)

    result = celery_result(ident, broker_url=cluster.redis_url, backend_url=cluster.redis_url)
    assert result == "flaky after 1 retry"
    wait_for_log(worker, f"skipped repeat of flaky {slot_text(SLOT_S)}")

    runs = executions_of(cluster, ident)
    assert [e.retries for e in runs] == [0, 1]
    outcome = read_outcomes(cluster.state(), NAMESPACE)["flaky"]
    assert (outcome["outcome"], outcome["task_id"]) == ("succeeded", ident)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_the_same_message_twice_through_rabbitmq_runs_once(
    cluster: Cluster, rabbitmq_url: str
) -> None:
    queue = f"sched-test-{uuid.uuid4().hex[:8]}"
    cluster.configure(
        namespace=NAMESPACE,
        extra_settings={"broker_url": rabbitmq_url},
        jobs={"greet": job_table("jobs.examples.hello", queue, "rabbit")},
    )
    try:
        worker = start_worker(cluster, queue, "worker")
        ident = publish_amqp(cluster, rabbitmq_url, "greet", queue, times=2)
        result = celery_result(ident, broker_url=rabbitmq_url, backend_url=cluster.redis_url)
        assert result == "Hello, rabbit!"
        wait_for_log(worker, f"skipped repeat of greet {slot_text(SLOT_S)}")
        assert len(executions_of(cluster, ident)) == 1
    finally:
        cluster.children.kill_all()  # nothing may redeclare the queue after we delete it
        delete_queues(rabbitmq_url, [queue])
    assert not queue_exists(rabbitmq_url, queue)


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_a_worker_killed_after_its_claim_is_stood_in_for_once_the_claim_expires(
    cluster: Cluster, rabbitmq_url: str
) -> None:
    """acks_late: RabbitMQ redelivers at once when the worker dies; the hook holds that copy back
    until the dead attempt's "started" claim (15 s for this task) has expired, then runs it."""
    queue = f"sched-test-{uuid.uuid4().hex[:8]}"
    cluster.configure(
        namespace=NAMESPACE,
        extra_settings={"broker_url": rabbitmq_url},
        jobs={"stall": job_table("tests.worker.userapp.stall", queue, "doomed.")},
    )
    app = "tests.worker.userapp"
    try:
        doomed = start_worker(cluster, queue, "doomed", app=app)
        ident = publish_amqp(cluster, rabbitmq_url, "stall", queue, times=1)
        wait_until(
            lambda: executions_of(cluster, ident),
            timeout_s=30,
            what="the doomed worker to claim the run",
            on_timeout=doomed.tail,
        )
        rescuer = start_worker(cluster, queue, "rescuer", app=app)
        os.killpg(doomed.pid, signal.SIGKILL)  # mid-task, message unacked
        doomed.wait_exit(timeout_s=10)

        wait_for_log(rescuer, f"deferred repeat of stall {slot_text(SLOT_S)}")
        result = celery_result(
            ident, broker_url=rabbitmq_url, backend_url=cluster.redis_url, timeout_s=60
        )
        assert result == "done by rescuer"
    finally:
        cluster.children.kill_all()
        delete_queues(rabbitmq_url, [queue])

    first, second = executions_of(cluster, ident)
    assert (first.worker.split(".")[0], second.worker.split(".")[0]) == ("doomed", "rescuer")
    assert first.retries == second.retries == 0  # a redelivery, not a retry
    # The stand-in ran only after the dead attempt's claim had expired, never alongside it.
    ms_apart = int(second.entry_id.split("-")[0]) - int(first.entry_id.split("-")[0])
    assert ms_apart >= 15_000
