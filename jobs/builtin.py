"""The built-in worker tasks: ``jobs.builtin.shell`` runs a job's command, ``jobs.builtin.http``
makes a job's HTTP request.

What to run never comes from the message: it names the job (``scheduler_job``), its slot and
the hash of the definition that sent it (``scheduler_job_hash``), and the worker takes the
command or request from its own copy of the config (`jobs.job_lookup`). A message it refuses
runs nothing and claims nothing (so a forged one cannot make the genuine fire a repeat); it
is logged in one line and, when it names a job, reported as failed with the reason.

Each run's exit code or status, duration and output go into the job's history as the report's
detail (`jobs.hooks.DETAIL_ATTR`). On failure, the ``scheduler_retries`` header
({"retries": n, "delay_s": x, "backoff": bool}) retries with Celery's ``retry``: the same task
id, so the run-once claim (`jobs.runonce`) still holds, each retry reported as "retried".
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from celery import shared_task

from jobs.hooks import DETAIL_ATTR
from jobs.http_run import NO_BODY, Request, make_request
from jobs.job_lookup import JobLookup, Refused
from jobs.runonce import RunOnceTask
from jobs.scheduled import request_header, scheduled_run
from jobs.shell_run import Command, ShellRefused, run_command
from scheduler.jobspec import HTTP_TASK, SHELL_TASK, JobSpec
from scheduler.wire import HEADER_JOB_HASH

log = logging.getLogger(__name__)

HEADER_RETRIES = "scheduler_retries"
# Where before_start leaves the resolved job on the request, for the task's body.
JOB_ATTR = "scheduler_builtin_job"

_lookup: list[JobLookup] = []  # one per process, made on first use (no work on import)


def job_lookup() -> JobLookup:
    if not _lookup:
        _lookup.append(JobLookup())
    return _lookup[0]


class Failed(Exception):
    """A built-in job's run failed; its message is the error line history shows."""

    report_plainly = True  # jobs.hooks.error_line: the message without the type's name


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 0
    delay_s: float = 10.0
    backoff: bool = False

    def countdown(self, done: int) -> float:
        """The wait before retry number `done` + 1."""
        return self.delay_s * (2**done if self.backoff else 1)


def retry_policy(raw: object) -> RetryPolicy:
    """The ``scheduler_retries`` header (a JSON object, or its text); no retries when it is
    absent or not what the scheduler writes."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raw = None
    if raw is None:
        return RetryPolicy()
    if isinstance(raw, dict):
        retries, delay, backoff = raw.get("retries"), raw.get("delay_s"), raw.get("backoff")
        if (
            isinstance(retries, int)
            and not isinstance(retries, bool)
            and 0 <= retries <= 100
            and isinstance(delay, int | float)
            and not isinstance(delay, bool)
            and delay >= 0
            and isinstance(backoff, bool)
        ):
            return RetryPolicy(retries, float(delay), backoff)
    log.warning(
        "ignored a %s header that is not what the scheduler writes: %r", HEADER_RETRIES, raw
    )
    return RetryPolicy()


class BuiltinTask(RunOnceTask):
    """Resolves the message's job in the worker's own config before anything is claimed."""

    builtin: ClassVar[str] = ""  # SHELL_TASK or HTTP_TASK

    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        request = self.request
        run = scheduled_run(request)
        try:
            if run is None:
                raise Refused("not sent by the scheduler (no scheduler_job/scheduler_slot headers)")
            job = job_lookup().builtin_job(
                run.job, self.builtin, request_header(request, HEADER_JOB_HASH)
            )
        except Refused as exc:
            log.error(
                "refused %s for job %s slot %s (task %s): %s; nothing run",
                self.name,
                run.job if run else "-",
                run.slot if run else "-",
                task_id,
                exc,
            )
            raise
        setattr(request, JOB_ATTR, job)
        super().before_start(task_id, args, kwargs)

    def finish(self, detail: str, error: str | None) -> None:
        """Leave `detail` for the report; on `error`, retry as the header says, or fail."""
        request = self.request
        setattr(request, DETAIL_ATTR, detail)
        if error is None:
            return
        policy = retry_policy(_header(request, HEADER_RETRIES))
        done = int(getattr(request, "retries", 0) or 0)
        failure = Failed(error)
        if done < policy.retries:
            raise self.retry(
                exc=failure, countdown=policy.countdown(done), max_retries=policy.retries
            )
        raise failure


class ShellTask(BuiltinTask):
    builtin = SHELL_TASK


class HttpTask(BuiltinTask):
    builtin = HTTP_TASK


def _header(request: Any, name: str) -> object:
    """A header's value whatever its JSON type (request_header reads text only)."""
    value = getattr(request, name, None)
    headers = getattr(request, "headers", None)
    if value is None and isinstance(headers, dict):
        value = headers.get(name)
    return value


def _job(task: Any) -> JobSpec:
    job = getattr(task.request, JOB_ATTR, None)
    if not isinstance(job, JobSpec):
        raise Refused("no job was resolved for this message")  # only if called directly
    return job


def shell_command(job: JobSpec) -> Command:
    options = job.shell
    return Command(
        argv=job.command,
        cwd=options.cwd if options else None,
        env=dict(options.env) if options else {},
        timeout_s=options.timeout.total_seconds() if options and options.timeout else None,
        user=options.user if options else None,
    )


def http_request(job: JobSpec) -> Request:
    spec = job.http
    assert spec is not None  # the lookup only resolves http jobs for HTTP_TASK
    return Request(
        method=spec.method,
        url=spec.url,
        headers=dict(spec.headers),
        json=NO_BODY if spec.json is None else spec.json,
        timeout_s=spec.timeout.total_seconds(),
        expect=spec.expect,
    )


# The message's args and kwargs are accepted and ignored: nothing of what to run comes from it.
@shared_task(name=SHELL_TASK, bind=True, base=ShellTask)  # type: ignore[untyped-decorator]
def shell(self: ShellTask, *_args: Any, **_kwargs: Any) -> dict[str, Any]:
    """Run the job's command (from this worker's config); its exit code and duration."""
    try:
        result = run_command(shell_command(_job(self)))
    except ShellRefused as exc:  # another user without root: retrying cannot help
        setattr(self.request, DETAIL_ATTR, str(exc))
        raise Failed(str(exc)) from None
    self.finish(result.detail(), result.error)
    return {"exit_code": result.exit_code, "duration_s": round(result.duration_s, 3)}


@shared_task(name=HTTP_TASK, bind=True, base=HttpTask)  # type: ignore[untyped-decorator]
def http(self: HttpTask, *_args: Any, **_kwargs: Any) -> dict[str, Any]:
    """Make the job's request (from this worker's config); its status and duration."""
    response = make_request(http_request(_job(self)))
    self.finish(response.detail(), response.error)
    return {"status": response.status, "duration_s": round(response.duration_s, 3)}
