"""Real Celery workers: the same scheduler message delivered twice runs once, a retry runs
again, a task that runs for many started TTLs keeps its claim (solo, threads, prefork), a
worker killed after its claim is stood in for once that claim lapses, and a deferral that
cannot be sent hands its message back to the broker.

Messages are built by the scheduler's own MessageFactory, so they are byte for byte what a
leader sends; "the same fire twice" is what an outbox replay or a broker redelivery produces.
"""

from __future__ import annotations

import os
import signal
import sys
import uuid
from collections.abc import Mapping
from typing import Any

import pytest
from kombu import Connection

from scheduler.config import load_config
from scheduler.messages import MessageFactory
from scheduler.store.keys import Keys
from scheduler.store.runs import Execution, RunClaims
from scheduler.wire import slot_text, task_id
from tests.conftest import free_port
from tests.integration.harness import (
    Child,
    Cluster,
    celery_result,
    wait_for_outcome,
    wait_until,
)
from tests.integration.test_rabbitmq import delete_queues, queue_exists
from tests.worker.userapp import SHORT_TTL

NAMESPACE = "wk-runonce"
SLOT_S = 1_800_000_000  # any slot: the worker side never looks at the clock
TOKEN = 7
USERAPP = "tests.worker.userapp"
TTL_MS = int(SHORT_TTL.total_seconds() * 1000)  # the started TTL of userapp's long tasks


def start_worker(
    cluster: Cluster,
    queue: str,
    name: str,
    app: str = "jobs",
    *,
    pool: str = "solo",
    concurrency: int = 1,
    env: Mapping[str, str] | None = None,
) -> Child:
    """A worker of `app` on `queue` (solo pool unless told), ready to consume."""
    command = [
        sys.executable, "-m", "celery", "-A", app, "worker",
        f"--pool={pool}", f"--concurrency={concurrency}",
        "--without-mingle", "--without-gossip", "--without-heartbeat",
        # A node name of its own: workers of other test runs share RabbitMQ's pidbox queues.
        "-Q", queue, "-n", f"{name}.{uuid.uuid4().hex[:8]}@%h", "--loglevel=INFO",
    ]  # fmt: skip
    worker = cluster.children.start(name, command, {**cluster.env, **(env or {})})
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


def logged(workers: list[Child], text: str) -> int:
    """How many times `text` is in the logs of `workers`, together."""
    return sum(worker.log_text().count(text) for worker in workers)


def claim_of(cluster: Cluster, ident: str) -> tuple[str, str, int] | None:
    """(state, nonce, age in ms by Redis TIME) of the run claim of task `ident`, if any."""
    state = cluster.state()
    raw: bytes | None = state.get(Keys(NAMESPACE).run_claim(ident))  # type: ignore[assignment]
    if raw is None:
        return None
    status, _retries, since_ms, nonce, _worker = raw.decode().split(" ", 4)
    seconds, micros = state.time()  # type: ignore[misc]
    return status, nonce, int(seconds) * 1000 + int(micros) // 1000 - int(since_ms)


def held_for_ttls(cluster: Cluster, ident: str, nonce: str, ttls: int) -> bool:
    """Whether attempt `nonce` still holds a started claim taken more than `ttls` TTLs ago."""
    claim = claim_of(cluster, ident)
    return claim is not None and claim[:2] == ("started", nonce) and claim[2] > ttls * TTL_MS


def runs_of(cluster: Cluster, gate: str) -> int:
    """How many times userapp's linger body ran with `gate` (its own counter, not the claims)."""
    return int(cluster.state().get(f"{gate}:runs") or 0)


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
    # The hooks record "succeeded" after Celery stored the result that the test got above.
    outcome = wait_for_outcome(cluster.state(), NAMESPACE, "greet", "succeeded")
    assert outcome["task_id"] == ident


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
    # The hooks record "succeeded" after Celery stored the result that the test got above.
    outcome = wait_for_outcome(cluster.state(), NAMESPACE, "flaky", "succeeded")
    assert outcome["task_id"] == ident


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
@pytest.mark.timeout(150)
@pytest.mark.parametrize("pool", ["solo", "threads", "prefork"])
def test_a_task_running_for_many_started_ttls_runs_once_and_its_repeat_waits(
    cluster: Cluster, pool: str
) -> None:
    """The body runs for more than three of its 3 s started TTLs while a repeat of its message
    arrives. The claim is renewed every second, so each copy of the repeat meets it, is
    deferred again, and is skipped once the run is done: one execution, one run of the body."""
    queue = f"wk-long-{uuid.uuid4().hex[:8]}"
    gate = f"gate-{uuid.uuid4().hex[:8]}"
    cluster.configure(
        namespace=NAMESPACE, jobs={"linger": job_table(f"{USERAPP}.linger", queue, gate)}
    )
    runner = start_worker(cluster, queue, "runner", USERAPP, pool=pool, concurrency=2)
    ident = push_redis(cluster, "linger", times=1)
    [first] = wait_until(
        lambda: executions_of(cluster, ident) or None,
        timeout_s=30,
        what="the first delivery to claim the run",
        on_timeout=runner.tail,
    )
    claim = claim_of(cluster, ident)
    assert claim is not None
    nonce = claim[1]
    # A solo worker runs one task at a time: its repeat goes to a second worker. A threads
    # worker takes it on a second thread next to the running task, a prefork one in its second
    # child process (the keeper runs in the child that holds the claim).
    workers = [runner]
    if pool == "solo":
        workers.append(start_worker(cluster, queue, "repeater", USERAPP, pool="solo"))
    push_redis(cluster, "linger", times=1)

    def tails() -> str:
        return cluster.children.log_tails()

    def deferred_twice() -> bool:
        runs = runs_of(cluster, gate)
        assert runs == 1, f"the body ran {runs} times: a copy of the repeat got through"
        return logged(workers, f"deferred repeat of linger {slot_text(SLOT_S)}") >= 2

    wait_until(
        deferred_twice, timeout_s=30, what="the repeat to be deferred twice", on_timeout=tails
    )
    wait_until(
        lambda: held_for_ttls(cluster, ident, nonce, ttls=3),
        timeout_s=30,
        what="the first attempt to hold its claim for three TTLs",
        on_timeout=tails,
    )
    assert runs_of(cluster, gate) == 1
    assert executions_of(cluster, ident) == [first]

    cluster.state().lpush(gate, "open")
    result = celery_result(ident, broker_url=cluster.redis_url, backend_url=cluster.redis_url)
    assert result == "released"
    wait_until(
        lambda: logged(workers, f"skipped repeat of linger {slot_text(SLOT_S)}") == 1,
        timeout_s=30,
        what="the repeat's last copy to be skipped",
        on_timeout=tails,
    )
    assert runs_of(cluster, gate) == 1
    assert executions_of(cluster, ident) == [first]
    assert logged(workers, f"Task {USERAPP}.linger[{ident}] succeeded") == 1
    assert logged(workers, "lost its started claim") == 0
    assert (claim_of(cluster, ident) or ("",))[0] == "done"


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_a_worker_killed_after_its_claim_is_stood_in_for_once_the_claim_lapses(
    cluster: Cluster, rabbitmq_url: str
) -> None:
    """acks_late: RabbitMQ redelivers at once when the worker dies. The doomed attempt's claim
    had been renewed for more than three of its 3 s TTLs; once nobody renews it, it lapses within
    one TTL, and the redelivery (held back until then) runs the slot."""
    queue = f"sched-test-{uuid.uuid4().hex[:8]}"
    cluster.configure(
        namespace=NAMESPACE,
        extra_settings={"broker_url": rabbitmq_url},
        jobs={"stall": job_table(f"{USERAPP}.stall", queue, "doomed.")},
    )
    state = cluster.state()
    try:
        doomed = start_worker(cluster, queue, "doomed", USERAPP)
        ident = publish_amqp(cluster, rabbitmq_url, "stall", queue, times=1)
        wait_until(
            lambda: executions_of(cluster, ident) or None,
            timeout_s=30,
            what="the doomed worker to claim the run",
            on_timeout=doomed.tail,
        )
        claim = claim_of(cluster, ident)
        assert claim is not None
        wait_until(
            lambda: held_for_ttls(cluster, ident, claim[1], ttls=3),
            timeout_s=30,
            what="the doomed attempt to hold its claim for three TTLs",
            on_timeout=doomed.tail,
        )
        rescuer = start_worker(cluster, queue, "rescuer", USERAPP)
        # When the claim lapses if nobody renews it from now on (TIME and PTTL read together).
        with state.pipeline(transaction=True) as pipe:
            (seconds, micros), left_ms = (
                pipe.time().pttl(Keys(NAMESPACE).run_claim(ident)).execute()
            )
        lapses_ms = int(seconds) * 1000 + int(micros) // 1000 + int(left_ms)
        os.killpg(doomed.pid, signal.SIGKILL)  # mid-task, message unacked
        doomed.wait_exit(timeout_s=10)
        killed_s, killed_us = state.time()  # type: ignore[misc]
        killed_ms = int(killed_s) * 1000 + int(killed_us) // 1000

        wait_for_log(rescuer, f"deferred repeat of stall {slot_text(SLOT_S)}")
        result = celery_result(
            ident, broker_url=rabbitmq_url, backend_url=cluster.redis_url, timeout_s=60
        )
        assert result == "done by rescuer"
        wait_until(
            lambda: (claim_of(cluster, ident) or ("",))[0] == "done",
            timeout_s=10,
            what="the rescuer to finish its claim",
            on_timeout=rescuer.tail,
        )
    finally:
        cluster.children.kill_all()
        delete_queues(rabbitmq_url, [queue])

    first, second = executions_of(cluster, ident)
    assert (first.worker.split(".")[0], second.worker.split(".")[0]) == ("doomed", "rescuer")
    assert first.retries == second.retries == 0  # a redelivery, not a retry
    second_ms = int(second.entry_id.split("-")[0])
    # Never alongside the doomed attempt: only once its last renewed claim had lapsed ...
    assert second_ms >= lapses_ms
    # ... and soon: within one TTL of the kill, plus the deferral's 1 s margin and some slack.
    assert second_ms - killed_ms <= TTL_MS + 1_000 + 3_000
    assert rescuer.log_text().count(f"Task {USERAPP}.stall[{ident}] succeeded") == 1


@pytest.mark.integration
@pytest.mark.timeout(150)
def test_a_deferral_that_cannot_be_sent_hands_the_message_back(cluster: Cluster) -> None:
    """The worker consumes from the Redis broker but publishes to a closed port
    (broker_write_url), so deferring the repeat fails for real. The task is acks_late: the
    repeat is rejected with requeue, comes back, and is tried again, until the run it waits for
    is done; then it is skipped and acked. Nothing runs twice, nothing is dropped."""
    queue = f"wk-nodefer-{uuid.uuid4().hex[:8]}"
    gate = f"gate-{uuid.uuid4().hex[:8]}"
    cluster.configure(
        namespace=NAMESPACE, jobs={"linger": job_table(f"{USERAPP}.linger_late", queue, gate)}
    )
    unreachable = {"USERAPP_BROKER_WRITE_URL": f"redis://127.0.0.1:{free_port()}/0"}
    worker = start_worker(
        cluster, queue, "worker", USERAPP, pool="threads", concurrency=2, env=unreachable
    )
    state = cluster.state()
    ident = push_redis(cluster, "linger", times=1)
    wait_until(
        lambda: executions_of(cluster, ident) or None,
        timeout_s=30,
        what="the first delivery to claim the run",
        on_timeout=worker.tail,
    )
    push_redis(cluster, "linger", times=1)
    failed = f"could not defer repeat of linger {slot_text(SLOT_S)}"
    wait_until(
        lambda: worker.log_text().count(failed) >= 3,
        timeout_s=60,
        what="the repeat to come back and fail to defer three times",
        on_timeout=worker.tail,
    )
    # Both messages are still the broker's: the running one unacked (acks_late), the repeat
    # queued again or taken again (kombu's Redis transport: the queue list, the unacked hash).
    wait_until(
        lambda: state.llen(queue) + state.hlen("unacked") == 2,
        timeout_s=10,
        what="both messages on the broker",
        on_timeout=worker.tail,
    )
    assert "rejected it with requeue" in worker.log_text()
    assert runs_of(cluster, gate) == 1

    state.lpush(gate, "open")
    result = celery_result(ident, broker_url=cluster.redis_url, backend_url=cluster.redis_url)
    assert result == "released"
    wait_for_log(worker, f"skipped repeat of linger {slot_text(SLOT_S)}")
    wait_until(
        lambda: state.llen(queue) + state.hlen("unacked") == 0,
        timeout_s=10,
        what="every message acked",
        on_timeout=worker.tail,
    )
    assert runs_of(cluster, gate) == 1
    assert len(executions_of(cluster, ident)) == 1
