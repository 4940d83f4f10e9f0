"""RunOnceTask inside one process, against a real redis-server: the claim before the body, the
skip of a repeat, the finish after it, and install(app) on users' own apps.

Requests are pushed the way Celery's tracer pushes them; the real-worker round trips are in
test_worker_runonce.py. The claim keeper's thread runs for real here: a claim taken in
`before_start` is renewed until the task_postrun signal drops it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from celery import Celery, Task, signals, states
from celery.exceptions import Ignore, Reject

import jobs.celery  # builds our worker's app
import jobs.examples  # registers the example tasks on it
from jobs.hooks import install
from jobs.runonce import (
    DEFAULT_STARTED_TTL,
    RunClaimUnavailable,
    RunOnceTask,
    claim_keeper,
    policy_for,
)
from jobs.settings import WorkerSettings
from scheduler.connections import redis_client
from scheduler.store.keys import Keys
from scheduler.store.outcomes import read_outcomes
from scheduler.store.runs import DONE, RETRYING, STARTED, RunClaims
from scheduler.store.scripts import script_text
from tests.conftest import RedisServer, free_port
from tests.integration.harness import wait_until

NAMESPACE = "test-runonce"
KEYS = Keys(NAMESPACE)
TASK_ID = "0b7c1a52-5b1e-5e0c-9d43-000000000001"
JOB, SLOT = "greet", "2026-11-25T21:00:00Z"
QUEUE = "runonce-q"


def make_app(redis_url: str, **install_options: Any) -> Any:
    app = Celery("runonce-test", broker=redis_url, backend=redis_url, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"])
    install(app, WorkerSettings(redis_url, redis_url, NAMESPACE), **install_options)
    return app


@pytest.fixture(autouse=True)
def nothing_left_renewing() -> Iterator[None]:
    """Every test finishes what it claims: afterwards this process renews no claim."""
    yield
    assert claim_keeper().holding() == []


@pytest.fixture
def app(redis_server: RedisServer) -> Iterator[Any]:
    app = make_app(redis_server.url)
    yield app
    app.close()


@pytest.fixture
def task(app: Any) -> Any:
    @app.task(name="tests.worker.greet", shared=False)
    def greet() -> str:
        return "hi"

    return app.tasks["tests.worker.greet"]


@pytest.fixture
def claims(redis_server: RedisServer) -> RunClaims:
    return RunClaims(redis_client(redis_server.url), KEYS)


@contextmanager
def delivered(task: Any, retries: int = 0, **headers: Any) -> Iterator[Any]:
    """Push a request like the worker does for a scheduler message; pop it afterwards."""
    scheduler_headers = {"scheduler_job": JOB, "scheduler_slot": SLOT, "scheduler_token": "7"}
    task.push_request(
        id=TASK_ID,
        retries=retries,
        hostname="w1@host",
        args=[],
        kwargs={},
        delivery_info={"exchange": "", "routing_key": QUEUE},
        **(scheduler_headers | headers),
    )
    try:
        yield task.request
    finally:
        task.pop_request()


def ran(task: Any, state: str = states.SUCCESS, retval: Any = "hi") -> None:
    """What the tracer sends after the body, while the request is still pushed."""
    signals.task_postrun.send(
        sender=task, task_id=TASK_ID, task=task, args=(), kwargs={}, retval=retval, state=state
    )


def run_count(claims: RunClaims) -> int:
    return sum(1 for e in claims.executions() if e.task_id == TASK_ID)


def test_a_repeat_of_a_finished_run_is_skipped(
    task: Any, claims: RunClaims, caplog: pytest.LogCaptureFixture
) -> None:
    assert isinstance(task, RunOnceTask)
    with delivered(task):
        task.before_start(TASK_ID, (), {})
        assert read_outcomes(claims.client, NAMESPACE)[JOB]["outcome"] == "started"
        ran(task)
    assert (claims.read(TASK_ID) or "").startswith(f"{DONE} 0 ")

    caplog.set_level(logging.INFO, logger="jobs.runonce")
    with delivered(task), pytest.raises(Ignore):
        task.before_start(TASK_ID, (), {})
    assert f"skipped repeat of {JOB} {SLOT}" in caplog.text
    assert run_count(claims) == 1
    assert claims.client.llen(QUEUE) == 0  # a finished run is not deferred


def test_tasks_the_scheduler_did_not_send_are_left_alone(task: Any, claims: RunClaims) -> None:
    task.push_request(id=TASK_ID, retries=0, hostname="w1@host", args=[], kwargs={})
    try:
        task.before_start(TASK_ID, (), {})
        task.before_start(TASK_ID, (), {})
    finally:
        task.pop_request()
    assert claims.client.keys(f"{NAMESPACE}:*") == []


def test_a_retry_runs_and_a_repeat_of_the_retried_attempt_does_not(
    task: Any, claims: RunClaims
) -> None:
    with delivered(task, retries=0):
        task.before_start(TASK_ID, (), {})
        ran(task, states.RETRY, retval=None)
    assert (claims.read(TASK_ID) or "").startswith(f"{RETRYING} 0 ")
    with delivered(task, retries=0), pytest.raises(Ignore):
        task.before_start(TASK_ID, (), {})
    with delivered(task, retries=1):
        task.before_start(TASK_ID, (), {})
        ran(task)
    assert (claims.read(TASK_ID) or "").startswith(f"{DONE} 1 ")
    assert [e.retries for e in claims.executions()] == [0, 1]


def test_a_retry_that_overtakes_its_attempt_is_no_cause_for_alarm(
    task: Any, claims: RunClaims, caplog: pytest.LogCaptureFixture
) -> None:
    # The retry can start (on another worker) before the attempt that sent it has finished.
    with delivered(task, retries=0):
        task.before_start(TASK_ID, (), {})
        with delivered(task, retries=1):
            task.before_start(TASK_ID, (), {})
            ran(task)
        ran(task, states.RETRY, retval=None)
    assert (claims.read(TASK_ID) or "").startswith(f"{DONE} 1 ")
    assert "ran longer" not in caplog.text


def test_a_body_that_requeues_its_message_gives_the_claim_up(task: Any, claims: RunClaims) -> None:
    with delivered(task):
        task.before_start(TASK_ID, (), {})
        ran(task, states.REJECTED, retval=Reject("later", requeue=True))
    assert claims.read(TASK_ID) is None
    with delivered(task):
        task.before_start(TASK_ID, (), {})  # the requeued copy runs at once
        ran(task)


def test_a_repeat_while_another_attempt_runs_comes_back_when_its_claim_expires(
    task: Any, claims: RunClaims, caplog: pytest.LogCaptureFixture
) -> None:
    held_for = timedelta(seconds=30)
    claims.claim(
        task_id=TASK_ID,
        job=JOB,
        slot=SLOT,
        retries=0,
        nonce="other",
        worker="w0@gone",
        started_ttl=held_for,
    )
    caplog.set_level(logging.INFO, logger="jobs.runonce")
    before = time.time()
    with delivered(task), pytest.raises(Ignore):
        task.before_start(TASK_ID, (), {})
    assert f"deferred repeat of {JOB} {SLOT}" in caplog.text
    assert run_count(claims) == 1  # only the attempt that holds the claim

    [raw] = claims.client.lrange(QUEUE, 0, -1)
    headers = json.loads(raw)["headers"]
    assert headers["id"] == TASK_ID
    assert headers["retries"] == 0  # the same attempt, not a retry: it still meets the claim
    assert (headers["scheduler_job"], headers["scheduler_slot"]) == (JOB, SLOT)
    assert headers["scheduler_token"] == "7"
    eta_s = datetime.fromisoformat(headers["eta"]).timestamp()
    assert before + held_for.total_seconds() - 2 <= eta_s <= time.time() + 32


def test_redis_down_runs_the_task_anyway_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app(f"redis://127.0.0.1:{free_port()}/0")

    @app.task(name="tests.worker.down", shared=False)
    def down() -> None:
        """Runs even though it could not be claimed."""

    task = app.tasks["tests.worker.down"]
    with delivered(task):
        task.before_start(TASK_ID, (), {})  # no exception: the run is not lost
        ran(task)
    assert f"could not claim {JOB} {SLOT}" in caplog.text
    assert "running it anyway" in caplog.text


def test_redis_down_fails_a_task_that_must_not_run_unclaimed() -> None:
    app = make_app(f"redis://127.0.0.1:{free_port()}/0")

    @app.task(name="tests.worker.strict", shared=False, run_without_claim=False)
    def strict() -> None:
        """Must never run twice: better not at all than unclaimed."""

    task = app.tasks["tests.worker.strict"]
    with delivered(task), pytest.raises(RunClaimUnavailable, match=f"job {JOB} slot {SLOT}"):
        task.before_start(TASK_ID, (), {})


def test_the_started_claim_ttl_is_the_tasks_or_the_apps_whatever_the_time_limit(
    redis_server: RedisServer,
) -> None:
    app = make_app(redis_server.url, started_ttl=timedelta(seconds=20))

    @app.task(name="tests.worker.plain", shared=False)
    def plain() -> None:
        """No TTL of its own: the app's default."""

    @app.task(name="tests.worker.limited", shared=False, time_limit=300)
    def limited() -> None:
        """A hard time limit changes nothing: the claim is renewed while the task runs."""

    @app.task(name="tests.worker.explicit", shared=False, started_ttl=timedelta(seconds=90))
    def explicit() -> None:
        """Says how long itself."""

    def ttl(name: str, **request: Any) -> timedelta:
        task = app.tasks[f"tests.worker.{name}"]
        task.push_request(**request)
        try:
            return task.claim_ttl(task.request, policy_for(app))  # type: ignore[no-any-return]
        finally:
            task.pop_request()

    assert ttl("plain") == timedelta(seconds=20)
    assert ttl("limited") == timedelta(seconds=20)
    assert ttl("plain", timelimit=(60, 30)) == timedelta(seconds=20)
    assert ttl("explicit", timelimit=(60, 30)) == timedelta(seconds=90)
    app.close()
    default_app = make_app(redis_server.url)
    assert policy_for(default_app).started_ttl == DEFAULT_STARTED_TTL == timedelta(minutes=1)
    default_app.close()


def claim_age_ms(claims: RunClaims, nonce: str) -> int | None:
    """How long ago (Redis TIME) the claim of attempt `nonce` was taken; None if not its own or
    not started any more."""
    raw = claims.read(TASK_ID)
    if raw is None:
        return None
    state, _retries, since_ms, held_by, _worker = raw.split(" ", 4)
    if state != STARTED or held_by != nonce:
        return None
    seconds, micros = claims.client.time()  # type: ignore[misc]
    return int(seconds) * 1000 + int(micros) // 1000 - int(since_ms)


def test_a_running_claim_is_renewed_until_its_task_finishes(
    redis_server: RedisServer, claims: RunClaims
) -> None:
    app = make_app(redis_server.url)
    ttl = timedelta(seconds=1.5)

    @app.task(name="tests.worker.long", shared=False, started_ttl=ttl)
    def long() -> None:
        """Runs for as long as the test keeps its request pushed."""

    task = app.tasks["tests.worker.long"]
    key = KEYS.run_claim(TASK_ID)
    with delivered(task) as request:
        task.before_start(TASK_ID, (), {})
        nonce = request.scheduler_attempt.nonce
        assert claim_keeper().holding() == [TASK_ID]
        # Three TTLs later the claim is still this attempt's, and never had more than a TTL left.
        wait_until(
            lambda: (claim_age_ms(claims, nonce) or 0) > 3 * ttl.total_seconds() * 1000,
            timeout_s=15,
            what="the running claim to outlive three of its TTLs",
            interval_s=0.05,
        )
        assert 0 < claims.client.pttl(key) <= ttl.total_seconds() * 1000
        ran(task)
    assert claim_keeper().holding() == []
    assert (claims.read(TASK_ID) or "").startswith(f"{DONE} 0 ")
    # Stopped: nothing shortens the done TTL back to the started one.
    done_ttl_ms = claims.client.pttl(key)
    assert done_ttl_ms > timedelta(days=6).total_seconds() * 1000
    assert run_count(claims) == 1
    app.close()


def test_renewal_errors_are_logged_never_raised_and_renewal_resumes(
    redis_server: RedisServer, claims: RunClaims, caplog: pytest.LogCaptureFixture
) -> None:
    """CLIENT PAUSE WRITE makes Redis hold every script for 4.5 s. The renewal due after 2 s
    times out on the worker's 1 s read timeout (StoreUnavailable), is logged, and is tried again
    a second later; that one is answered when the pause ends, before the 6 s claim lapsed."""
    app = make_app(redis_server.url)
    ttl = timedelta(seconds=6)

    @app.task(name="tests.worker.paused", shared=False, started_ttl=ttl)
    def paused() -> None:
        """Runs through a Redis that stops taking writes for a while."""

    task = app.tasks["tests.worker.paused"]
    caplog.set_level(logging.INFO, logger="jobs.runonce")
    with delivered(task) as request:
        task.before_start(TASK_ID, (), {})
        nonce = request.scheduler_attempt.nonce
        claims.client.execute_command("CLIENT", "PAUSE", "4500", "WRITE")
        wait_until(
            lambda: "could not renew the run claim" in caplog.text,
            timeout_s=10,
            what="a failed renewal to be logged",
            interval_s=0.05,
        )
        wait_until(
            lambda: f"renewed the run claim of {JOB} {SLOT}" in caplog.text,
            timeout_s=15,
            what="the renewal to resume",
            interval_s=0.05,
        )
        assert claim_age_ms(claims, nonce) is not None  # still this attempt's started claim
        ran(task)
    assert (claims.read(TASK_ID) or "").startswith(f"{DONE} 0 ")
    assert "lapsed" not in caplog.text
    app.close()


def test_a_claim_key_of_the_wrong_type_runs_the_task_loudly_and_is_not_sent_again(
    task: Any, claims: RunClaims, caplog: pytest.LogCaptureFixture
) -> None:
    """A hash at the claim key (WRONGTYPE) is StateCorrupt: deterministic, so the claim is not
    resent as a transient error would be; the task runs anyway (run_without_claim) and says so."""
    key = KEYS.run_claim(TASK_ID)
    claims.client.hset(key, "someone", "else")
    claims.client.script_load(script_text("run_claim"))  # no NOSCRIPT round trip below
    claims.client.config_resetstat()
    with delivered(task):
        task.before_start(TASK_ID, (), {})  # no exception: the body runs
        ran(task)
    stats = claims.client.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 1  # one claim, not sent again; nothing to finish
    error = next(r for r in caplog.records if "is not one this package wrote" in r.message)
    assert error.levelno == logging.ERROR
    assert "RUNNING IT WITHOUT A CLAIM" in error.message
    assert key in error.message
    assert "WRONGTYPE" in error.message
    assert claims.client.type(key) == b"hash"  # the operator's data is left alone
    assert claims.client.hgetall(key) == {b"someone": b"else"}


def test_a_claim_key_of_the_wrong_type_fails_a_task_that_must_not_run_unclaimed(
    redis_server: RedisServer, claims: RunClaims
) -> None:
    app = make_app(redis_server.url)

    @app.task(name="tests.worker.careful", shared=False, run_without_claim=False)
    def careful() -> None:
        """Better not at all than unclaimed."""

    claims.client.hset(KEYS.run_claim(TASK_ID), "someone", "else")
    task = app.tasks["tests.worker.careful"]
    with delivered(task), pytest.raises(RunClaimUnavailable, match="WRONGTYPE"):
        task.before_start(TASK_ID, (), {})
    app.close()


def test_a_failed_deferral_of_an_acks_late_task_hands_its_message_back(
    redis_server: RedisServer, claims: RunClaims, caplog: pytest.LogCaptureFixture
) -> None:
    """Publishing goes to a closed port (broker_write_url), so the deferral's send fails for
    real. The message of an acks_late task is not acked yet: Reject(requeue=True) gives it back
    (test_worker_runonce.py watches it come back on a real worker)."""
    app = make_app(redis_server.url)
    app.conf.broker_write_url = f"redis://127.0.0.1:{free_port()}/0"
    claims.claim(
        task_id=TASK_ID,
        job=JOB,
        slot=SLOT,
        retries=0,
        nonce="other",
        worker="w0@busy",
        started_ttl=timedelta(seconds=30),
    )

    @app.task(name="tests.worker.late", shared=False, acks_late=True)
    def late() -> None:
        """Acked only after it ran."""

    @app.task(name="tests.worker.early", shared=False)
    def early() -> None:
        """Acked when the worker took it (Celery's default)."""

    with delivered(app.tasks["tests.worker.late"]), pytest.raises(Reject) as rejected:
        app.tasks["tests.worker.late"].before_start(TASK_ID, (), {})
    assert rejected.value.requeue is True
    assert f"could not defer repeat of {JOB} {SLOT}" in caplog.text
    assert "rejected it with requeue" in caplog.text

    caplog.clear()
    with delivered(app.tasks["tests.worker.early"]), pytest.raises(Ignore):
        app.tasks["tests.worker.early"].before_start(TASK_ID, (), {})
    [lost] = [r for r in caplog.records if "could not defer" in r.message]
    assert lost.levelno == logging.ERROR
    assert "cannot go back to the broker" in lost.message
    assert run_count(claims) == 1  # only the attempt that holds the claim
    app.close()


def test_install_makes_run_once_the_default_base_of_a_users_app(redis_server: RedisServer) -> None:
    class Audited(Task):  # type: ignore[misc]
        """A user's own base class, already set on the app."""

    app = Celery("users-app", broker=redis_server.url, task_cls=Audited, set_as_current=False)
    install(app, WorkerSettings(redis_server.url, redis_server.url, NAMESPACE))

    @app.task(shared=False)
    def mine() -> None:
        """Defined after install: gets the hook."""

    assert isinstance(app.tasks[mine.name], RunOnceTask)
    assert isinstance(app.tasks[mine.name], Audited)
    app.close()


def test_install_names_the_tasks_it_came_too_late_for(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    app = Celery("late", broker=redis_server.url, set_as_current=False)

    @app.task(name="late.early", shared=False)
    def early() -> None:
        """Created (app finalized) before install."""

    app.finalize()
    install(app, WorkerSettings(redis_server.url, redis_server.url, NAMESPACE))
    assert not isinstance(app.tasks["late.early"], RunOnceTask)
    assert "late.early" in caplog.text
    app.close()


def test_the_example_tasks_run_once() -> None:
    names = ["jobs.examples.hello", "jobs.examples.ping", "jobs.examples.count_errors"]
    assert all(isinstance(jobs.celery.app.tasks[name], RunOnceTask) for name in names)
