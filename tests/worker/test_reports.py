"""What the worker hooks report about each fire, from real Celery workers: received, started,
succeeded / failed / retried, with duration, worker and a failure's "Type: first line"; kept
in each job's capped stream (history_max entries, none older than history_ttl by Redis TIME).

Messages are built by the scheduler's own MessageFactory, as a leader sends them.
"""

from __future__ import annotations

import logging
import sys
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery, signals
from kombu import Connection

from jobs import hooks
from jobs.hooks import error_line, install
from jobs.scheduled import OutcomeRecorder, ScheduledRun
from jobs.settings import WorkerSettings, load_worker_settings
from scheduler.config import load_config
from scheduler.messages import MessageFactory
from scheduler.store.keys import Keys
from scheduler.store.outcomes import read_outcomes
from scheduler.store.reports import ReportWriter, Retention
from scheduler.wire import manual_task_id, slot_text, task_id
from tests.clocks import ManualClock
from tests.conftest import RedisServer, free_port
from tests.integration.harness import Child, Cluster

NAMESPACE = "wk-reports"
SLOT_S = 1_800_000_000
TOKEN = 7
MISSING_LOG = "/nonexistent/app.log"
KEYS = Keys(NAMESPACE)


def start_worker(cluster: Cluster, queue: str, app: str, pool: str) -> Child:
    command = [
        sys.executable, "-m", "celery", "-A", app, "worker", f"--pool={pool}", "--concurrency=1",
        "--without-mingle", "--without-gossip", "--without-heartbeat",
        "-Q", queue, "-n", f"worker.{uuid.uuid4().hex[:8]}@%h", "--loglevel=INFO",
    ]  # fmt: skip
    worker = cluster.children.start("worker", command, cluster.env)
    cluster.wait_worker_ready(worker)
    return worker


def push(cluster: Cluster, job: str, slot_s: int = SLOT_S, times: int = 1) -> str:
    """LPUSH the scheduled fire of `job` at `slot_s`, as the claim script would; its task id."""
    factory = MessageFactory(NAMESPACE, cluster.redis_url, {})
    try:
        fire = factory.redis_push(load_config(cluster.config_path).jobs[job], slot_s, TOKEN)
    finally:
        factory.close()
    for _ in range(times):
        cluster.state().lpush(fire.key, fire.payload)
    return task_id(NAMESPACE, job, slot_s)


def publish_manual(cluster: Cluster, job: str, queue: str) -> str:
    """Publish a `trigger`'s fire of `job` (kind "manual") through kombu; its task id."""
    factory = MessageFactory(NAMESPACE, cluster.redis_url, {})
    ident = manual_task_id(NAMESPACE, job, slot_text(SLOT_S), 1)
    try:
        spec = load_config(cluster.config_path).jobs[job]
        arguments = factory.operator_publish_arguments(spec, SLOT_S, ident, "manual")
        with Connection(cluster.redis_url, connect_timeout=5) as connection:
            connection.Producer().publish(**arguments, declare=[factory.queue(queue)])
    finally:
        factory.close()
    return ident


def reports(client: redis.Redis, job: str, ident: str) -> list[dict[str, str]]:
    """The reports of task `ident`, oldest first, as text."""
    entries: Any = client.xrange(KEYS.reports(job))
    found = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]
    return [f for f in found if f["task_id"] == ident]


def wait_for_events(
    cluster: Cluster, job: str, ident: str, last: str, count: int = 1
) -> list[dict[str, str]]:
    """Wait until task `ident` has reported `last` `count` times; its reports."""

    def done() -> list[dict[str, str]] | None:
        found = reports(cluster.state(), job, ident)
        return found if [f["event"] for f in found].count(last) >= count else None

    return cluster.wait_until(done, timeout_s=30, what=f"{job} reporting {last!r}")


def job_table(task: str, queue: str, *args: object) -> dict[str, object]:
    return {"task": task, "every": "1h", "queue": queue, "args": list(args)}


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_prefork_worker_reports_success_failure_and_the_kind(cluster: Cluster) -> None:
    queue = f"wk-rep-{uuid.uuid4().hex[:8]}"
    cluster.configure(namespace=NAMESPACE, jobs={
        "greet": job_table("jobs.examples.hello", queue, "reports"),
        "broken": job_table("jobs.examples.count_errors", queue, MISSING_LOG),
    })  # fmt: skip
    start_worker(cluster, queue, "jobs", pool="prefork")
    greet, broken = push(cluster, "greet"), push(cluster, "broken")
    manual = publish_manual(cluster, "greet", queue)

    ran = wait_for_events(cluster, "greet", greet, "succeeded")
    assert [r["event"] for r in ran] == ["received", "started", "succeeded"]
    assert {r["slot"] for r in ran} == {slot_text(SLOT_S)}
    assert {r["kind"] for r in ran} == {"scheduled"}
    # The Celery node name: the main process (received) and the pool's child agree.
    assert len({r["worker"] for r in ran}) == 1
    assert ran[0]["worker"].startswith("worker.")
    assert float(ran[2]["duration_s"]) >= 0
    assert "duration_s" not in ran[0]
    assert "duration_s" not in ran[1]

    failed = wait_for_events(cluster, "broken", broken, "failed")
    assert [r["event"] for r in failed] == ["received", "started", "failed"]
    assert failed[2]["error"] == f"FileNotFoundError: count_errors: no log file at {MISSING_LOG}"
    assert float(failed[2]["duration_s"]) >= 0

    by_hand = wait_for_events(cluster, "greet", manual, "succeeded")
    assert [(r["event"], r["kind"]) for r in by_hand] == [
        ("received", "manual"), ("started", "manual"), ("succeeded", "manual"),
    ]  # fmt: skip

    state = cluster.state()
    outcomes = read_outcomes(state, NAMESPACE)
    assert outcomes["broken"]["outcome"] == "failed"
    assert outcomes["broken"]["detail"] == failed[2]["error"]
    assert outcomes["greet"]["outcome"] == "succeeded"
    assert "broken" not in {k.decode() for k in state.hkeys(KEYS.last_success)}  # type: ignore[union-attr]
    seconds, micros = state.time()  # type: ignore[misc]
    success: Any = state.hget(KEYS.last_success, "greet")
    assert 0 <= seconds + micros / 1e6 - float(success) < 30  # Redis TIME, not the worker's clock


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_users_app_reports_a_retry_and_a_skipped_repeat_reports_only_received(
    cluster: Cluster,
) -> None:
    queue = f"wk-rep-{uuid.uuid4().hex[:8]}"
    cluster.configure(
        namespace=NAMESPACE, jobs={"flaky": job_table("tests.worker.userapp.flaky", queue, "x")}
    )
    worker = start_worker(cluster, queue, "tests.worker.userapp", pool="solo")
    ident = push(cluster, "flaky", times=2)

    found = wait_for_events(cluster, "flaky", ident, "succeeded")
    cluster.wait_until(
        lambda: "skipped repeat of flaky" in worker.log_text(), timeout_s=30, what="the repeat"
    )
    found = reports(cluster.state(), "flaky", ident)
    # Two deliveries of attempt 0 and the retry's: three received; one of them is skipped.
    assert [r["event"] for r in found].count("received") == 3
    ran = [r for r in found if r["event"] != "received"]
    assert [r["event"] for r in ran] == ["started", "retried", "started", "succeeded"]
    assert ran[1]["error"].startswith("Retry")
    assert float(ran[1]["duration_s"]) >= 0
    assert float(ran[3]["duration_s"]) >= 0
    # The skipped repeat's "received" came after the retry: the outcome is still the run's.
    assert read_outcomes(cluster.state(), NAMESPACE)["flaky"]["outcome"] == "succeeded"


# -- the writer and its retention, on a real Redis (no worker needed) -----------------------


def write(client: redis.Redis, n: int, retention: Retention, job: str = "j") -> None:
    writer = ReportWriter(client, KEYS)
    for i in range(n):
        writer.add(job, "started", slot_text(SLOT_S), f"t{i}", retention=retention)


def test_a_small_history_max_is_kept_exactly(redis_server: RedisServer) -> None:
    client = redis_server.client()
    write(client, 12, Retention(max_entries=5))
    entries: Any = client.xrange(KEYS.reports("j"))
    assert [f[b"task_id"] for _, f in entries] == [b"t7", b"t8", b"t9", b"t10", b"t11"]


def test_a_large_history_max_is_kept_approximately(redis_server: RedisServer) -> None:
    # MAXLEN ~ frees whole stream nodes (100 entries each by default): a few more stay.
    client = redis_server.client()
    write(client, 700, Retention(max_entries=300))
    assert 300 <= client.xlen(KEYS.reports("j")) < 400


def test_history_ttl_trims_by_redis_time(redis_server: RedisServer) -> None:
    client = redis_server.client()
    key = KEYS.reports("j")
    seconds, _ = client.time()  # type: ignore[misc]
    now_ms = int(seconds) * 1000
    for age_s, name in ((600, b"10m"), (115, b"115s"), (30, b"30s")):
        client.xadd(key, {"event": "started", "task_id": name}, id=f"{now_ms - age_s * 1000}-0")
    write(client, 1, Retention(ttl=timedelta(minutes=2)))
    entries: Any = client.xrange(key)
    assert [f[b"task_id"] for _, f in entries] == [b"115s", b"30s", b"t0"]


def test_a_received_never_replaces_an_outcome_of_the_same_task(redis_server: RedisServer) -> None:
    client = redis_server.client()
    writer = ReportWriter(client, KEYS)
    for event, ident in (("succeeded", "a"), ("received", "a")):
        writer.add("j", event, "s", ident)
    assert read_outcomes(client, NAMESPACE)["j"]["task_id"] == "a"
    assert read_outcomes(client, NAMESPACE)["j"]["outcome"] == "succeeded"
    writer.add("j", "received", "s2", "b")
    assert read_outcomes(client, NAMESPACE)["j"] == {
        "slot": "s2", "task_id": "b", "outcome": "received", "detail": None,
        "at": pytest.approx(float(client.time()[0]), abs=5),  # type: ignore[index]
    }  # fmt: skip


def test_a_garbled_key_is_left_alone_and_the_others_written(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = redis_server.client()
    client.set(KEYS.outcomes, "garbage")
    settings = WorkerSettings(redis_server.url, redis_server.url, NAMESPACE)
    run = ScheduledRun(job="j", slot=slot_text(SLOT_S), task_id="t")
    with caplog.at_level(logging.ERROR):
        OutcomeRecorder(settings).record(run, "succeeded", duration_s=0.25, worker="w@h")
    assert f"but not at {KEYS.outcomes}" in caplog.text
    [(_, fields)] = client.xrange(KEYS.reports("j"))  # type: ignore[misc]
    assert fields[b"duration_s"] == b"0.250"
    assert fields[b"worker"] == b"w@h"
    assert client.get(KEYS.outcomes) == b"garbage"
    assert client.hexists(KEYS.last_success, "j")


def test_an_unreachable_redis_is_logged_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    nowhere = "redis://127.0.0.1:1/0"
    recorder = OutcomeRecorder(WorkerSettings(nowhere, nowhere, NAMESPACE))
    with caplog.at_level(logging.ERROR):
        recorder.record(ScheduledRun("j", "s", "t"), "failed", "ValueError: x")
    assert "could not record outcome 'failed' of job j slot s (task t)" in caplog.text


def test_the_worker_settings_carry_the_retention(tmp_path: Path) -> None:
    config = tmp_path / "scheduler.toml"
    config.write_text('[scheduler]\nhistory_max = 5\nhistory_ttl = "90m"\n', encoding="utf-8")
    settings = load_worker_settings(config)
    assert (settings.history_max, settings.history_ttl) == (5, timedelta(minutes=90))


def test_an_error_line_is_the_type_and_the_first_line() -> None:
    assert error_line(ValueError("bad input")) == "ValueError: bad input"
    assert error_line(KeyError("k")) == "KeyError: 'k'"
    assert error_line(RuntimeError("first\nsecond")) == "RuntimeError: first"
    assert error_line(RuntimeError()) == "RuntimeError"
    assert error_line(ValueError("x" * 900)) == "ValueError: " + "x" * 488


@dataclass
class ReceivedRequest:
    """What the ``task_received`` handler reads of a worker's Request: its app, task id and
    message headers (a real Request needs a consumer and a message around it)."""

    app: Any
    id: str
    request_dict: dict[str, str]
    hostname: str = "worker@test"


def test_an_unreachable_redis_costs_the_consumer_one_received_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The worker's consumer reports "received" for every scheduler message: with its Redis
    refusing, it tries once, then leaves them out for RECEIVED_QUIET_S instead of paying a
    failed connection (or a timeout) per message; afterwards it tries again."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = WorkerSettings(redis_url=dead, broker_url=dead, namespace=NAMESPACE)
    app = Celery("received-quiet", broker=dead, set_as_current=False)
    clock = ManualClock()
    install(app, settings, clock=clock)

    def receive(n: int) -> None:
        headers = {"scheduler_job": "greet", "scheduler_slot": slot_text(SLOT_S + n)}
        request = ReceivedRequest(app, task_id(NAMESPACE, "greet", SLOT_S + n), headers)
        signals.task_received.send(sender=None, request=request)

    def attempts() -> int:
        return sum("could not record outcome 'received'" in r.getMessage() for r in caplog.records)

    with caplog.at_level(logging.ERROR):
        for n in range(5):
            receive(n)
        assert attempts() == 1
        clock.advance(hooks.RECEIVED_QUIET_S + 1)
        receive(5)
        assert attempts() == 2
