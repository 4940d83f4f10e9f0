"""Which deliveries the scheduler sent, the worker's Redis client, and the recorder that
reports what happened to them.

Only messages carrying the ``scheduler_job`` and ``scheduler_slot`` headers are the scheduler's;
the hooks leave every other task alone.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

import redis
from celery import current_task

from jobs.settings import WorkerSettings
from scheduler.connections import Timeouts, redis_client
from scheduler.message_key import load_key
from scheduler.signing import Signer
from scheduler.store.keys import Keys
from scheduler.store.reports import ReportWriter, Retention
from scheduler.wire import HEADER_FIRE, HEADER_JOB, HEADER_KIND, HEADER_SLOT, HEADER_STEP

log = logging.getLogger(__name__)

# A chain's later step, which the worker that ran the step before sends (jobs/hooks.py): its
# index (the fire's own message is step 0) and the task id of the fire it belongs to.

# A task must not wait long on a slow Redis just to claim or report itself.
REDIS_TIMEOUTS = Timeouts(connect_s=1.0, read_s=1.0)


@dataclass(frozen=True)
class ScheduledRun:
    """One execution of a fired slot, as named by its message."""

    job: str
    slot: str
    task_id: str
    kind: str = "scheduled"  # the scheduler_kind header: why it was sent
    # A chain's step or a group's member: its index; a chain's later step: its fire's task id.
    step: int | None = None
    fire: str | None = None


def scheduled_run(request: Any) -> ScheduledRun | None:
    """The (job, slot) a task request was fired for; None if the scheduler did not send it.

    Works on a task's request (`Task.request`, in the process that runs it) and on the worker's
    `celery.worker.request.Request` of the ``task_received`` signal (in the main process).
    """
    job = request_header(request, HEADER_JOB)
    slot = request_header(request, HEADER_SLOT)
    task_id = getattr(request, "id", None)
    if job is None or slot is None or not isinstance(task_id, str):
        return None
    kind = request_header(request, HEADER_KIND) or "scheduled"
    fire = request_header(request, HEADER_FIRE)
    return ScheduledRun(
        job=job, slot=slot, task_id=task_id, kind=kind, step=_step(request), fire=fire
    )


def _step(request: Any) -> int | None:
    """The step index of a chain's later step (our header), or of a group's member (Celery's
    `group_index`, set by the scheduler on every member); None for any other message."""
    stamped = request_header(request, HEADER_STEP)
    if stamped is not None:
        return int(stamped) if stamped.isdigit() else None
    index = getattr(request, "group_index", None)
    if index is None:
        found = getattr(request, "request_dict", None)
        index = found.get("group_index") if isinstance(found, dict) else None
    return index if isinstance(index, int) and not isinstance(index, bool) else None


def request_header(request: Any, name: str) -> str | None:
    """A header of the message behind `request`. Celery 5 copies a message's custom headers
    onto a task's request as attributes and keeps them in ``request.headers`` too; the worker's
    Request (``task_received``) has them in ``request_dict``. Read all three, so a change on
    either side does not silently disable us."""
    value = getattr(request, name, None)
    for holder in ("headers", "request_dict"):
        if value is not None:
            break
        headers = getattr(request, holder, None)
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
    """Reports what happened to each scheduler-sent task: one event into the job's reports
    stream and its newest outcome, in one round trip (scheduler/store/reports.py). A failure
    is logged, never raised into the task."""

    def __init__(self, settings: WorkerSettings, redis_: WorkerRedis | None = None) -> None:
        self._settings = settings
        self._redis = redis_ or WorkerRedis(settings.redis_url)
        self._keys = Keys(settings.namespace)
        self._retention = Retention(settings.history_max, settings.history_ttl)
        self._writer: ReportWriter | None = None

    def record(
        self,
        run: ScheduledRun,
        outcome: str,
        detail: str | None = None,
        *,
        duration_s: float | None = None,
        worker: str | None = None,
        output: str | None = None,
    ) -> bool:
        """Record event `outcome` of `run`; `detail` is a failure's "Type: first line",
        `duration_s` how long a finished run took, `worker` who ran it (default: this host),
        `output` the run's own account (a built-in task's exit code and output tails).
        Whether Redis took it (a failure is logged, never raised)."""
        try:
            client = self._redis.client()  # a new one after a fork: so is the writer
            if self._writer is None or self._writer.client is not client:
                self._writer = ReportWriter(client, self._keys)
            skipped = self._writer.add(
                run.job,
                outcome,
                run.slot,
                run.task_id,
                kind=run.kind,
                worker=worker or _current_worker(),
                duration_s=duration_s,
                error=detail,
                detail=output,
                retention=self._retention,
                step=run.step,
                fire=run.fire,
            )
        except Exception:
            log.exception(
                "could not record outcome %r of job %s slot %s (task %s)",
                outcome,
                run.job,
                run.slot,
                run.task_id,
            )
            return False
        if skipped:
            log.error(
                "recorded outcome %r of job %s slot %s (task %s) but not at %s: not what this "
                "package wrote there",
                outcome,
                run.job,
                run.slot,
                run.task_id,
                ", ".join(skipped),
            )
        return True


def _current_worker() -> str:
    """The Celery node name of the task running in this thread, else this host's name."""
    hostname = getattr(getattr(current_task, "request", None), "hostname", None)
    return hostname if isinstance(hostname, str) and hostname else socket.gethostname()
