"""Celery signal handlers that report what happened to each task the scheduler fired.

`install(app)` connects them to a Celery app (ours in `jobs`, or a user's own). They act only on
messages that carry the scheduler's ``scheduler_job`` header; every other task is left alone.
A failing hook is logged and never changes the task's own outcome.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import redis
from celery import signals

from jobs.settings import WorkerSettings, load_worker_settings
from scheduler.connections import Timeouts, redis_client
from scheduler.store.outcomes import record_outcome

log = logging.getLogger(__name__)

JOB_HEADER = "scheduler_job"
SLOT_HEADER = "scheduler_slot"

# A task must not wait long on a slow Redis just to report itself.
REDIS_TIMEOUTS = Timeouts(connect_s=1.0, read_s=1.0)
DETAIL_MAX_CHARS = 500


@dataclass(frozen=True)
class ScheduledRun:
    """One execution of a fired slot, as named by its message."""

    job: str
    slot: str
    task_id: str


def scheduled_run(request: Any) -> ScheduledRun | None:
    """The (job, slot) a task request was fired for; None if the scheduler did not send it.

    Celery 5 copies a message's custom headers onto the request as attributes and keeps them in
    ``request.headers`` too; read both, so a change on either side does not silently disable us.
    """
    job = _header(request, JOB_HEADER)
    slot = _header(request, SLOT_HEADER)
    task_id = getattr(request, "id", None)
    if job is None or slot is None or not isinstance(task_id, str):
        return None
    return ScheduledRun(job=job, slot=slot, task_id=task_id)


def _header(request: Any, name: str) -> str | None:
    value = getattr(request, name, None)
    if value is None:
        headers = getattr(request, "headers", None)
        if isinstance(headers, dict):
            value = headers.get(name)
    return value if isinstance(value, str) else None


class OutcomeRecorder:
    """Writes outcomes through the store, on one Redis client per worker process."""

    def __init__(self, settings: WorkerSettings) -> None:
        self._settings = settings
        self._client: redis.Redis | None = None
        self._client_pid: int | None = None

    def record(self, run: ScheduledRun, outcome: str, detail: str | None = None) -> None:
        try:
            record_outcome(
                self._redis(),
                self._settings.namespace,
                run.job,
                run.slot,
                run.task_id,
                outcome,
                detail,
            )
        except Exception:
            log.exception(
                "could not record outcome %r of job %s slot %s (task %s)",
                outcome,
                run.job,
                run.slot,
                run.task_id,
            )

    def _redis(self) -> redis.Redis:
        # Prefork workers fork after import: a client (and its sockets) must not cross a fork.
        if self._client is None or self._client_pid != os.getpid():
            self._client = redis_client(self._settings.redis_url, REDIS_TIMEOUTS)
            self._client_pid = os.getpid()
        return self._client


def install(app: Any, settings: WorkerSettings | None = None) -> OutcomeRecorder:
    """Report the outcome of every scheduler-fired task run by `app`'s workers.

    `settings` defaults to the scheduler's config file (``$SCHEDULER_CONFIG``). Installing twice
    on one app replaces the first installation rather than recording everything twice.
    """
    recorder = OutcomeRecorder(settings or load_worker_settings())

    def ours(task: Any) -> ScheduledRun | None:
        # Celery signals are process-global; only look at tasks of the app we were installed on.
        if getattr(task, "app", None) is not app:
            return None
        return scheduled_run(getattr(task, "request", None))

    def on_prerun(sender: Any = None, **_: Any) -> None:
        run = ours(sender)
        if run is not None:
            # Seam for de-duplication (a later issue): claim (job, slot) here and skip the
            # task body when another delivery of the same fire already ran it.
            recorder.record(run, "started")

    def on_success(sender: Any = None, **_: Any) -> None:
        run = ours(sender)
        if run is not None:
            recorder.record(run, "succeeded")

    def on_failure(sender: Any = None, exception: BaseException | None = None, **_: Any) -> None:
        run = ours(sender)
        if run is not None:
            recorder.record(run, "failed", _describe(exception))

    def on_retry(sender: Any = None, reason: object = None, **_: Any) -> None:
        run = ours(sender)
        if run is not None:
            recorder.record(run, "retried", _describe(reason))

    handlers = {
        signals.task_prerun: on_prerun,
        signals.task_success: on_success,
        signals.task_failure: on_failure,
        signals.task_retry: on_retry,
    }
    uid = f"scheduler.hooks:{id(app)}"
    for signal, handler in handlers.items():
        # weak=False: these closures have no other owner and would be collected at once.
        signal.disconnect(dispatch_uid=uid)
        signal.connect(handler, weak=False, dispatch_uid=uid)
    return recorder


def _describe(reason: object) -> str | None:
    if reason is None:
        return None
    if isinstance(reason, BaseException):
        text = f"{type(reason).__name__}: {reason}"
    else:
        text = str(reason)
    return text[:DETAIL_MAX_CHARS]
