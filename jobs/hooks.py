"""Install the worker hooks on a Celery app: run once per (job, slot), and report outcomes.

`install(app)` works on our app in `jobs` and on a user's own. It makes `RunOnceTask` the app's
default task base (so each fired (job, slot) runs once, see `jobs.runonce`), and connects signal
handlers that report what happened to each task the scheduler fired: received (in the worker's
main process, as the message arrives), started (by RunOnceTask once its claim succeeds, so a
skipped repeat reports nothing more), succeeded, failed or retried, with how long the run took,
the worker's name and a failure's "Type: first line". Both act only on messages that carry the
scheduler's headers; every other task is left alone. A failing hook is logged and never changes
the task's own outcome.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from celery import current_task, signals

from jobs.runonce import (
    DEFAULT_DONE_TTL,
    DEFAULT_STARTED_TTL,
    RunOnce,
    RunOnceTask,
    enable,
    use_as_default_base,
)
from jobs.scheduled import (
    OutcomeRecorder,
    ScheduledRun,
    WorkerRedis,
    message_signer,
    request_header,
    scheduled_run,
)
from jobs.settings import WorkerSettings, load_worker_settings
from scheduler.clock import Clock, SystemClock
from scheduler.signing import Signer, canonical_body
from scheduler.wire import (
    HEADER_FIRE,
    HEADER_JOB,
    HEADER_KIND,
    HEADER_SIGNATURE,
    HEADER_SLOT,
    HEADER_STEP,
    HEADER_TOKEN,
)

DETAIL_MAX_CHARS = 500
# After a "received" report failed, none is attempted for this long (the consumer's thread).
RECEIVED_QUIET_S = 30.0
# Where on_prerun leaves the run's start (time.monotonic()) on the task's request.
STARTED_ATTR = "scheduler_started_monotonic"
# Where a task leaves its report's detail (the built-in tasks: exit code, output tails).
DETAIL_ATTR = "scheduler_report_detail"

__all__ = ["OutcomeRecorder", "ScheduledRun", "install", "scheduled_run"]


def install(
    app: Any,
    settings: WorkerSettings | None = None,
    *,
    started_ttl: timedelta = DEFAULT_STARTED_TTL,
    done_ttl: timedelta = DEFAULT_DONE_TTL,
    clock: Clock | None = None,
) -> OutcomeRecorder:
    """Run `app`'s scheduler-fired tasks once per (job, slot) and report their outcomes.

    `settings` defaults to the scheduler's config file (``$SCHEDULER_CONFIG``). `started_ttl`
    is how long a running task's claim lives between two renewals (the worker renews it every
    third of that while the task runs), so how soon a dead worker's run may be taken over;
    `done_ttl` is how long a finished run refuses repeats (docs/worker-hook.md). Call it before
    the app creates its tasks (e.g. right after ``Celery(...)``): tasks created earlier keep
    their class. With a message key configured (``message_key_file``), scheduler messages
    whose signature is missing or wrong are refused before they are claimed. `clock` times
    the pause after a failed "received" report (tests pass their own). Installing twice
    on one app replaces the first installation rather than recording everything twice. Signal
    handlers are connected here, never on import.
    """
    settings = settings or load_worker_settings()
    redis_ = WorkerRedis(settings.redis_url)
    recorder = OutcomeRecorder(settings, redis_)
    signer = message_signer(settings)
    enable(
        app,
        RunOnce(
            settings.namespace,
            redis_,
            started_ttl=started_ttl,
            done_ttl=done_ttl,
            recorder=recorder,
            signer=signer,
        ),
    )
    use_as_default_base(app)

    def ours(task: Any) -> ScheduledRun | None:
        # Celery signals are process-global; only look at tasks of the app we were installed on.
        if getattr(task, "app", None) is not app:
            return None
        return scheduled_run(getattr(task, "request", None))

    def report(task: Any, run: ScheduledRun, event: str, detail: str | None = None) -> None:
        request = getattr(task, "request", None)
        started = getattr(request, STARTED_ATTR, None)
        elapsed = time.monotonic() - started if isinstance(started, float) else None
        output = getattr(request, DETAIL_ATTR, None)
        recorder.record(
            run,
            event,
            detail,
            duration_s=elapsed,
            worker=_worker(request),
            output=output if isinstance(output, str) else None,
        )

    ticks = clock or SystemClock()
    quiet_until = [0.0]  # no "received" reports until then: the last one failed

    def on_received(sender: Any = None, request: Any = None, **_: Any) -> None:
        # The worker's main process, as the message arrives: before any pool takes it. It
        # consumes every message, so an unreachable Redis must not cost each one a timeout:
        # after a failure, "received" is left out for a while (the other events still go).
        if getattr(request, "app", getattr(sender, "app", None)) is not app:
            return
        run = scheduled_run(request)
        if run is None or ticks.monotonic() < quiet_until[0]:
            return
        if not recorder.record(run, "received", worker=_worker(request)):
            quiet_until[0] = ticks.monotonic() + RECEIVED_QUIET_S

    def on_prerun(sender: Any = None, **_: Any) -> None:
        run = ours(sender)
        if run is None:
            return
        # Durations count from here: just before RunOnceTask's claim, right before the body.
        setattr(sender.request, STARTED_ATTR, time.monotonic())
        # A RunOnceTask reports "started" itself, once its claim succeeds: task_prerun comes
        # before the claim, and a skipped repeat must not overwrite the outcome of the run.
        if not isinstance(sender, RunOnceTask):
            recorder.record(run, "started", worker=_worker(sender.request))

    def on_success(sender: Any = None, **_: Any) -> None:
        run = ours(sender)
        if run is not None:
            report(sender, run, "succeeded")

    def on_failure(sender: Any = None, exception: BaseException | None = None, **_: Any) -> None:
        run = ours(sender)
        if run is not None:
            report(sender, run, "failed", error_line(exception))

    def on_retry(sender: Any = None, reason: object = None, **_: Any) -> None:
        run = ours(sender)
        if run is not None:
            # Celery's Retry carries the exception that caused it, when there was one.
            cause = getattr(reason, "exc", None)
            report(sender, run, "retried", error_line(cause if cause is not None else reason))

    def on_publish(sender: Any = None, body: Any = None, headers: Any = None, **_: Any) -> None:
        # Celery's worker sends a chain's next step itself (celery/app/trace.py), in the
        # process that ran the step before, while that task is still the current one.
        parent = current_task._get_current_object() if current_task else None
        if getattr(parent, "app", None) is app and isinstance(headers, dict):
            stamp_step(getattr(parent, "request", None), sender, body, headers, signer)

    handlers = {
        signals.before_task_publish: on_publish,
        signals.task_received: on_received,
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


def stamp_step(
    parent: Any, task: object, body: Any, headers: dict[str, Any], signer: Signer | None
) -> bool:
    """Make the next step of a scheduler-fired chain a scheduler message too: the parent's
    job, slot, token (and kind), its step index and the fire's task id, signed like the fire
    when a message key is configured (the worker holds it). Whether `headers` was stamped.

    Only the message Celery sends as the chain's continuation is stamped: its parent is the
    task running here, and its task is the last of that task's embedded chain (Celery pops
    the next step off the end). Anything else a task sends is left alone. The step has a task
    id of its own, so its run-once claim can neither take nor block the fire's."""
    run = scheduled_run(parent)
    chain = getattr(parent, "chain", None)
    if run is None or not chain or headers.get("parent_id") != run.task_id:
        return False
    following = chain[-1]
    ident = headers.get("id")
    if not isinstance(following, dict) or following.get("task") != task or not ident:
        return False
    headers[HEADER_JOB] = run.job
    headers[HEADER_SLOT] = run.slot
    token = request_header(parent, HEADER_TOKEN)
    if token is not None:
        headers[HEADER_TOKEN] = token
    if run.kind != "scheduled":
        headers[HEADER_KIND] = run.kind
    headers[HEADER_STEP] = str((run.step or 0) + 1)
    headers[HEADER_FIRE] = run.fire or run.task_id
    if signer is not None and isinstance(body, tuple | list) and len(body) == 3:
        args, kwargs, embed = body
        signed = canonical_body(args, kwargs, embed)
        headers[HEADER_SIGNATURE] = signer.sign(str(task), signed, run.job, run.slot, ident)
    return True


def error_line(reason: object) -> str | None:
    """A failure as one line: the exception's type and the first line of its message
    ("ValueError: bad input"), cut to DETAIL_MAX_CHARS."""
    if reason is None:
        return None
    if isinstance(reason, BaseException):
        lines = str(reason).strip().splitlines()
        name = type(reason).__name__
        text = f"{name}: {lines[0].strip()}" if lines else name
        if lines and getattr(reason, "report_plainly", False):
            text = lines[0].strip()  # a built-in task's "exit 3: ...": the type says nothing
    else:
        lines = str(reason).strip().splitlines()
        text = lines[0].strip() if lines else ""
    return text[:DETAIL_MAX_CHARS]


def _worker(request: Any) -> str | None:
    """The Celery node name ("worker1@host") the request ran on, if Celery said."""
    hostname = getattr(request, "hostname", None)
    return hostname if isinstance(hostname, str) and hostname else None
