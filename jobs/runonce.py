"""Run once per (job, slot): a Celery base task that claims each delivery before its body runs.

Celery calls `Task.before_start` inside the trace, after the ``task_prerun`` signal and right
before the body; raising `celery.exceptions.Ignore` there skips the body, stores no result and
acks the message (celery/app/trace.py, celery/worker/request.py, Celery 5.7). A signal handler
could not do this: Celery swallows the exceptions of signal receivers.

Only deliveries the scheduler sent (``scheduler_job``/``scheduler_slot`` headers) are claimed.
Their task id is uuid5 of (namespace, job, slot), so a repeated fire carries the same id, and
the claim at `Keys.run_claim(task_id)` tells a repeat from the first delivery. What is
guaranteed, and each limit (a worker dying after its claim, redelivery, ``retry()``, Redis
unreachable), is in docs/worker-hook.md.
"""

from __future__ import annotations

import logging
import socket
import uuid
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from celery import Task, signals, states
from celery.exceptions import Ignore
from celery.utils.imports import symbol_by_name

from jobs.scheduled import OutcomeRecorder, ScheduledRun, WorkerRedis, scheduled_run
from jobs.settings import load_worker_settings
from scheduler.errors import SchedulerError
from scheduler.store.keys import Keys
from scheduler.store.runs import (
    DONE,
    RETRYING,
    STARTED,
    ClaimReply,
    ClaimStatus,
    FinishStatus,
    HeldClaim,
    RunClaims,
)

log = logging.getLogger(__name__)

# How long a "started" claim holds off repeats when the task has no hard time limit. A worker
# that dies after claiming leaves it behind; a redelivery may run once it has expired.
DEFAULT_STARTED_TTL = timedelta(hours=1)
# How long a finished claim keeps refusing repeats: longer than any outbox replay or broker
# redelivery of the same fire can arrive.
DEFAULT_DONE_TTL = timedelta(days=7)
# A task with a hard time limit is killed by then (prefork pool); the claim outlives it by this.
TIME_LIMIT_MARGIN = timedelta(minutes=1)
# A deferred repeat comes back this long after the claim it waits for has expired.
DEFER_MARGIN = timedelta(seconds=1)
# A claim is idempotent (same nonce: "already ours"), so a resend after a lost reply is safe.
CLAIM_SENDS = 2
# Where before_start leaves the claim on the request, for the task_postrun handler.
ATTEMPT_ATTR = "scheduler_attempt"


class RunClaimUnavailable(SchedulerError):
    """Raised when a task with ``run_without_claim = False`` cannot claim its run in Redis."""

    def __init__(self, run: ScheduledRun, reason: BaseException) -> None:
        self.run = run
        super().__init__(
            f"could not claim job {run.job} slot {run.slot} (task {run.task_id}): {reason}"
        )


class RunOnce:
    """The run-once policy of one Celery app: where claims live and how long they last."""

    def __init__(
        self,
        namespace: str,
        redis_: WorkerRedis,
        *,
        started_ttl: timedelta = DEFAULT_STARTED_TTL,
        done_ttl: timedelta = DEFAULT_DONE_TTL,
        recorder: OutcomeRecorder | None = None,
    ) -> None:
        for name, ttl in (("started_ttl", started_ttl), ("done_ttl", done_ttl)):
            if ttl.total_seconds() < 1:
                raise ValueError(f"{name} must be at least 1 second, got {ttl}")
        self.keys = Keys(namespace)
        self.started_ttl = started_ttl
        self.done_ttl = done_ttl
        self.recorder = recorder
        self._redis = redis_
        self._claims: RunClaims | None = None

    def claims(self) -> RunClaims:
        client = self._redis.client()  # a new one after a fork
        if self._claims is None or self._claims.client is not client:
            self._claims = RunClaims(client, self.keys)
        return self._claims


_policies: weakref.WeakKeyDictionary[Any, RunOnce] = weakref.WeakKeyDictionary()


def enable(app: Any, policy: RunOnce) -> None:
    """Claim with `policy` for the RunOnceTask tasks of `app` (`jobs.hooks.install` calls it)."""
    _policies[app] = policy


def policy_for(app: Any) -> RunOnce:
    """The policy `enable` set for `app`, or one from the scheduler's config file."""
    policy = _policies.get(app)
    if policy is None:
        settings = load_worker_settings()
        policy = RunOnce(settings.namespace, WorkerRedis(settings.redis_url))
        _policies[app] = policy
        log.warning(
            "a RunOnceTask runs on Celery app %r without jobs.hooks.install(app): claiming in "
            "namespace %r of the scheduler's config; outcomes are not reported",
            getattr(app, "main", app),
            settings.namespace,
        )
    return policy


@dataclass(frozen=True)
class Attempt:
    """The delivery that holds a claim: what the task_postrun handler needs to finish it."""

    run: ScheduledRun
    retries: int
    nonce: str
    worker: str
    policy: RunOnce


class RunOnceTask(Task):  # type: ignore[misc]  # Celery is untyped
    """A task that runs once per fired (job, slot), even when its message is repeated.

    Use it as ``base=RunOnceTask``, or let `jobs.hooks.install(app)` make it the app's default
    base. Tasks the scheduler did not send are not claimed and run as usual.
    """

    # How long a "started" claim holds off repeats; None: the hard time limit plus a margin
    # when the task has one, else the app's default (install(app, started_ttl=...), 1 hour).
    started_ttl: timedelta | None = None
    # When Redis cannot be reached to claim: run anyway (True: a repeat may then run twice) or
    # fail the task with RunClaimUnavailable (False: the run may be lost).
    run_without_claim = True

    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        request = self.request
        run = scheduled_run(request)
        if run is not None:
            self._claim(run, request)
        super().before_start(task_id, args, kwargs)

    def claim_ttl(self, request: Any, policy: RunOnce) -> timedelta:
        """How long this delivery's "started" claim holds off repeats."""
        if self.started_ttl is not None:
            return self.started_ttl
        hard_s = _hard_time_limit_s(self, request)
        if hard_s is not None:
            return timedelta(seconds=hard_s) + TIME_LIMIT_MARGIN
        return policy.started_ttl

    def _claim(self, run: ScheduledRun, request: Any) -> None:
        policy = policy_for(self.app)
        attempt = Attempt(
            run=run,
            retries=int(getattr(request, "retries", 0) or 0),
            nonce=uuid.uuid4().hex,
            worker=str(getattr(request, "hostname", None) or socket.gethostname()),
            policy=policy,
        )
        try:
            reply = _send_claim(attempt, self.claim_ttl(request, policy))
        except redis.RedisError as exc:
            if not self.run_without_claim:
                raise RunClaimUnavailable(run, exc) from exc
            log.warning(
                "could not claim %s %s (task %s, retries %d): %s; running it anyway, "
                "so a repeat of this message could run it again",
                run.job,
                run.slot,
                run.task_id,
                attempt.retries,
                exc,
            )
            return
        if reply.may_run:
            setattr(request, ATTEMPT_ATTR, attempt)
            if reply.status is ClaimStatus.CLAIMED_OVER_GARBAGE:
                log.warning("replaced an unreadable run claim of task %s", run.task_id)
            if policy.recorder is not None:
                policy.recorder.record(run, "started")
            return
        held = reply.held
        assert held is not None  # a REPEAT always names the claim it found
        if held.state == STARTED and held.retries == attempt.retries:
            self._defer(attempt, request, held)
        else:
            log.info(
                "skipped repeat of %s %s (task %s, retries %d): attempt %d %s on %s at %s",
                run.job,
                run.slot,
                run.task_id,
                attempt.retries,
                held.retries,
                held.state,
                held.worker,
                _utc_text(held.since_ms),
            )
        raise Ignore()

    def _defer(self, attempt: Attempt, request: Any, held: HeldClaim) -> None:
        """Send this delivery again for when the claim it meets expires, so that if the
        attempt holding it died, the run happens then instead of never."""
        run = attempt.run
        wait = timedelta(milliseconds=held.ttl_ms) + DEFER_MARGIN
        try:
            self.signature_from_request(
                request, countdown=wait.total_seconds(), retries=attempt.retries
            ).apply_async()
        except Exception:
            log.exception(
                "could not defer repeat of %s %s (task %s): this delivery is dropped",
                run.job,
                run.slot,
                run.task_id,
            )
            return
        log.info(
            "deferred repeat of %s %s (task %s, retries %d) by %.0f s: attempt %d on %s, "
            "started at %s, still holds the claim; if it died, this copy runs then",
            run.job,
            run.slot,
            run.task_id,
            attempt.retries,
            wait.total_seconds(),
            held.retries,
            held.worker,
            _utc_text(held.since_ms),
        )


def _send_claim(attempt: Attempt, started_ttl: timedelta) -> ClaimReply:
    run = attempt.run
    for send in range(1, CLAIM_SENDS + 1):
        try:
            return attempt.policy.claims().claim(
                task_id=run.task_id,
                job=run.job,
                slot=run.slot,
                retries=attempt.retries,
                nonce=attempt.nonce,
                worker=attempt.worker,
                started_ttl=started_ttl,
            )
        except (redis.ConnectionError, redis.TimeoutError):
            if send == CLAIM_SENDS:
                raise
    raise AssertionError("unreachable")


def _utc_text(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hard_time_limit_s(task: Any, request: Any) -> float | None:
    """The hard time limit that applies to this delivery, as the worker picks it."""
    limits = getattr(request, "timelimit", None) or (None, None)
    for limit in (limits[0], task.time_limit, task.app.conf.task_time_limit):
        if limit:
            return float(limit)
    return None


def _on_postrun(sender: Any = None, state: str | None = None, retval: Any = None, **_: Any) -> None:
    """Finish the claim of a delivery that ran: done, retrying, or released on a requeue."""
    request = getattr(sender, "request", None)
    attempt = getattr(request, ATTEMPT_ATTR, None)
    if not isinstance(attempt, Attempt):
        return
    setattr(request, ATTEMPT_ATTR, None)
    run, policy = attempt.run, attempt.policy
    try:
        claims = policy.claims()
        if state == states.REJECTED and getattr(retval, "requeue", False):
            # The body asked for its message back: let the requeued copy run at once.
            claims.release(task_id=run.task_id, nonce=attempt.nonce)
            return
        status = claims.finish(
            task_id=run.task_id,
            nonce=attempt.nonce,
            state=RETRYING if state == states.RETRY else DONE,
            ttl=policy.done_ttl,
            retries=attempt.retries,
            worker=attempt.worker,
        )
    except redis.RedisError as exc:
        log.warning(
            "could not finish the run claim of %s %s (task %s): %s; it expires as started",
            run.job,
            run.slot,
            run.task_id,
            exc,
        )
        return
    if status is FinishStatus.TAKEN_OVER:
        log.warning(
            "%s %s (task %s) ran longer than its started claim, and another delivery claimed "
            "it meanwhile and may have run it too: raise started_ttl or set a time limit",
            run.job,
            run.slot,
            run.task_id,
        )
    elif status is FinishStatus.EXPIRED:
        log.warning(
            "%s %s (task %s) ran longer than its started claim; recorded as finished now",
            run.job,
            run.slot,
            run.task_id,
        )


# Process-global like every Celery signal; it acts only on requests that hold a claim.
signals.task_postrun.connect(_on_postrun, weak=False, dispatch_uid="jobs.runonce.finish")


def use_as_default_base(app: Any) -> None:
    """Make RunOnceTask the base of the tasks `app` creates without an explicit ``base=``.

    A custom task class already set on the app (``task_cls``, e.g. Django's) is kept, with
    RunOnceTask mixed in front of it. Tasks the app created before this call keep their class.
    """
    current = app.task_cls
    if isinstance(current, str):
        current = symbol_by_name(current)
    if not issubclass(current, RunOnceTask):
        if current is Task:
            app.task_cls = RunOnceTask
        else:
            app.task_cls = type(f"RunOnce{current.__name__}", (RunOnceTask, current), {})
        del app.Task  # a cached property built from task_cls; rebuilt on next use
    if app.finalized:
        stray = sorted(
            name
            for name, task in app.tasks.items()
            if not name.startswith("celery.") and not isinstance(task, RunOnceTask)
        )
        if stray:
            log.warning(
                "these tasks were created before jobs.hooks.install(app) and do not run once; "
                "give them base=RunOnceTask: %s",
                ", ".join(stray),
            )
