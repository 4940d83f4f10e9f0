"""Which deliveries the scheduler sent, and the worker's Redis client to report on them.

Only messages carrying the ``scheduler_job`` and ``scheduler_slot`` headers are the scheduler's;
the hooks leave every other task alone.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import redis

from jobs.settings import WorkerSettings
from scheduler.connections import Timeouts, redis_client
from scheduler.message_key import load_key
from scheduler.signing import Signer
from scheduler.store.outcomes import record_outcome
from scheduler.wire import HEADER_JOB, HEADER_SLOT

log = logging.getLogger(__name__)

# A task must not wait long on a slow Redis just to claim or report itself.
REDIS_TIMEOUTS = Timeouts(connect_s=1.0, read_s=1.0)


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
    job = request_header(request, HEADER_JOB)
    slot = request_header(request, HEADER_SLOT)
    task_id = getattr(request, "id", None)
    if job is None or slot is None or not isinstance(task_id, str):
        return None
    return ScheduledRun(job=job, slot=slot, task_id=task_id)


def request_header(request: Any, name: str) -> str | None:
    value = getattr(request, name, None)
    if value is None:
        headers = getattr(request, "headers", None)
        if isinstance(headers, dict):
            value = headers.get(name)
    return value if isinstance(value, str) else None


def message_signer(settings: WorkerSettings) -> Signer | None:
    """The verifier of the scheduler's message signatures, if a message key is configured.

    The key file is the config's ``message_key_file`` (``$SCHEDULER_MESSAGE_KEY_FILE``
    overrides it, as for the scheduler); a key that cannot be used is a ConfigError, so a
    worker never quietly runs unverified messages it was told to verify.
    """
    path = settings.message_key_file
    source = settings.source.name if settings.source is not None else ""
    key = load_key(path, source)
    return Signer(key) if key is not None else None


class WorkerRedis:
    """One Redis client per worker process, created on first use."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._client: redis.Redis | None = None
        self._client_pid: int | None = None

    def client(self) -> redis.Redis:
        # Prefork workers fork after import: a client (and its sockets) must not cross a fork.
        if self._client is None or self._client_pid != os.getpid():
            self._client = redis_client(self._url, REDIS_TIMEOUTS)
            self._client_pid = os.getpid()
        return self._client


class OutcomeRecorder:
    """Writes outcomes through the store; a failure is logged, never raised into the task."""

    def __init__(self, settings: WorkerSettings, redis_: WorkerRedis | None = None) -> None:
        self._settings = settings
        self._redis = redis_ or WorkerRedis(settings.redis_url)

    def record(self, run: ScheduledRun, outcome: str, detail: str | None = None) -> None:
        try:
            record_outcome(
                self._redis.client(),
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
