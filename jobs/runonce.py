"""Run once per (job, slot): a Celery base task that claims each delivery before its body runs.

Celery calls `Task.before_start` inside the trace, after the ``task_prerun`` signal and right
before the body; raising `celery.exceptions.Ignore` there skips the body, stores no result and
acks the message (celery/app/trace.py, celery/worker/request.py, Celery 5.7). A signal handler
could not do this: Celery swallows the exceptions of signal receivers.

Only deliveries the scheduler sent (``scheduler_job``/``scheduler_slot`` headers) are claimed.
Their task id is uuid5 of (namespace, job, slot), so a repeated fire carries the same id, and
the claim at `Keys.run_claim(task_id)` tells a repeat from the first delivery. While the body
runs, the process's `ClaimKeeper` renews the claim every third of its TTL, so the TTL is short
and a dead worker's claim lapses soon. What is guaranteed, and each limit (a worker dying after
its claim, redelivery, ``retry()``, Redis unreachable), is in docs/worker-hook.md.

Importing this module connects no signal and starts no thread: the ``task_postrun`` handler is
connected by `enable` (which `jobs.hooks.install` calls) or when a RunOnceTask task is bound to
an app, and the keeper's thread starts with the first claim a process holds.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Task, signals, states
from celery.exceptions import Ignore, Reject
from celery.utils.imports import symbol_by_name

from jobs.scheduled import (
    OutcomeRecorder,
    ScheduledRun,
    WorkerRedis,
    message_signer,
    request_header,
    scheduled_run,
)
from jobs.settings import load_worker_settings
from scheduler.errors import SchedulerError, StateCorrupt, StoreUnavailable
from scheduler.signing import EMBEDDED, Signer, canonical_body
from scheduler.store.keys import Keys
from scheduler.store.runs import (
    DONE,
    RETRYING,
    STARTED,
    ClaimReply,
    ClaimStatus,
    FinishStatus,
    HeldClaim,
    RenewStatus,
    RunClaims,
)
from scheduler.wire import HEADER_SIGNATURE

log = logging.getLogger(__name__)

# How long a "started" claim lives without being renewed. The worker renews it every third of
# this while the task runs, however long that is; a worker that dies stops renewing, and its
# claim lapses at most this long afterwards, so that a repeat or redelivery may run the slot.
DEFAULT_STARTED_TTL = timedelta(minutes=1)
# How long a finished claim keeps refusing repeats: longer than any outbox replay or broker
# redelivery of the same fire can arrive.
DEFAULT_DONE_TTL = timedelta(days=7)
# A started claim is renewed this many times per TTL: one lost renewal still leaves time.
RENEWALS_PER_TTL = 3
# After a renewal failed (Redis unreachable), the next try comes this soon (or sooner).
RENEW_RETRY = timedelta(seconds=1)
# How long a finishing task waits for a renewal of its claim already in flight (bounded by the
# worker's Redis timeouts in practice), so that no renewal lands after the finish.
DROP_WAIT_S = 5.0
# A deferred repeat comes back this long after the claim it waits for has expired.
DEFER_MARGIN = timedelta(seconds=1)
# A claim is idempotent (same nonce: "already ours"), so a resend after a lost reply is safe.
CLAIM_SENDS = 2
# Where before_start leaves the claim on the request, for the task_postrun handler.
ATTEMPT_ATTR = "scheduler_attempt"
# The task_postrun handler's dispatch uid: connecting it again is a no-op.
FINISH_DISPATCH_UID = "jobs.runonce.finish"


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
        signer: Signer | None = None,
    ) -> None:
        for name, ttl in (("started_ttl", started_ttl), ("done_ttl", done_ttl)):
            if ttl.total_seconds() < 1:
                raise ValueError(f"{name} must be at least 1 second, got {ttl}")
        self.keys = Keys(namespace)
        self.started_ttl = started_ttl
        self.done_ttl = done_ttl
        self.recorder = recorder
        # With a message key: the scheduler's messages must carry its signature.
        self.signer = signer
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
    connect_finish()


def connect_finish() -> None:
    """Connect the ``task_postrun`` handler that finishes claims; again is a no-op.

    Process-global like every Celery signal; it acts only on requests that hold a claim. It must
    be connected before a worker builds its task tracers (they keep the receivers list they
    found), which `enable` and binding a RunOnceTask to an app both are.
    """
    signals.task_postrun.connect(_on_postrun, weak=False, dispatch_uid=FINISH_DISPATCH_UID)


def policy_for(app: Any) -> RunOnce:
    """The policy `enable` set for `app`, or one from the scheduler's config file."""
    policy = _policies.get(app)
    if policy is None:
        settings = load_worker_settings()
        policy = RunOnce(
            settings.namespace,
            WorkerRedis(settings.redis_url),
            signer=message_signer(settings),
        )
        enable(app, policy)
        log.warning(
            "a RunOnceTask runs on Celery app %r without jobs.hooks.install(app): claiming in "
            "namespace %r of the scheduler's config; outcomes are not reported",
            getattr(app, "main", app),
            settings.namespace,
        )
    return policy


@dataclass(frozen=True)
class Attempt:
    """The delivery that holds a claim: what the keeper and the task_postrun handler need."""

    run: ScheduledRun
    retries: int
    nonce: str
    worker: str
    policy: RunOnce
    ttl: timedelta  # of its "started" claim, renewed every ttl / RENEWALS_PER_TTL


@dataclass
class _Held:
    attempt: Attempt
    due: float  # time.monotonic() of the next renewal
    failures: int = 0  # renewals in a row that raised
    logged: float = field(default=-1e9)  # time.monotonic() of the last failure logged


def _renew_every_s(ttl: timedelta) -> float:
    return ttl.total_seconds() / RENEWALS_PER_TTL


class ClaimKeeper:
    """Keeps the "started" claims this process holds alive while their tasks run.

    One daemon thread per process, started with the first claim it holds, renews each held
    claim every third of its TTL through a nonce-checked script (`RunClaims.renew`: never
    another delivery's claim, never a finished one), until the task_postrun handler drops it.
    The same for every pool: prefork (each child has its own keeper: threads do not survive a
    fork), solo and threads; under gevent/eventlet it is a green thread. Its failures are
    logged, never raised into a task.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._held: dict[str, _Held] = {}  # by nonce
        self._renewing: set[str] = set()  # nonces whose renewal is in flight
        self._thread: threading.Thread | None = None

    def hold(self, attempt: Attempt) -> None:
        """Renew `attempt`'s claim until `drop`; starts the thread if it is not running."""
        with self._cond:
            due = time.monotonic() + _renew_every_s(attempt.ttl)
            self._held[attempt.nonce] = _Held(attempt, due)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="run-claim-keeper", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def drop(self, attempt: Attempt) -> None:
        """Stop renewing `attempt`'s claim; returns once no renewal of it is in flight."""
        deadline = time.monotonic() + DROP_WAIT_S
        with self._cond:
            self._held.pop(attempt.nonce, None)
            while attempt.nonce in self._renewing:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning(
                        "a renewal of the run claim of task %s is still in flight after %.0f s",
                        attempt.run.task_id,
                        DROP_WAIT_S,
                    )
                    return
                self._cond.wait(left)

    def holding(self) -> list[str]:
        """The task ids whose claims this process renews now."""
        with self._cond:
            return sorted(held.attempt.run.task_id for held in self._held.values())

    def _run(self) -> None:
        while True:
            try:
                due = self._wait_for_due()
                self._settle([(held, _renew(held.attempt)) for held in due])
            except Exception:  # never let the keeper die: every held claim would lapse
                log.exception("the run claim keeper failed; it goes on")
                with self._cond:
                    self._renewing.clear()  # only this thread adds to it; a drop may go on
                    self._cond.notify_all()
                time.sleep(RENEW_RETRY.total_seconds())  # a back-off, not a synchronisation

    def _wait_for_due(self) -> list[_Held]:
        with self._cond:
            while True:
                now = time.monotonic()
                due = [held for held in self._held.values() if held.due <= now]
                if due:
                    self._renewing.update(held.attempt.nonce for held in due)
                    return due
                soonest = min((held.due for held in self._held.values()), default=None)
                self._cond.wait(None if soonest is None else soonest - now)

    def _settle(self, outcomes: list[tuple[_Held, RenewStatus | Exception]]) -> None:
        """Plan each claim's next renewal from how this one went; log what needs saying."""
        notes: list[tuple[int, str, tuple[object, ...]]] = []
        now = time.monotonic()
        with self._cond:
            for held, outcome in outcomes:
                attempt = held.attempt
                self._renewing.discard(attempt.nonce)
                if self._held.get(attempt.nonce) is not held:
                    continue  # its task finished meanwhile: nothing more to do or say
                run, every_s = attempt.run, _renew_every_s(attempt.ttl)
                what = (run.job, run.slot, run.task_id)
                if isinstance(outcome, StateCorrupt):
                    del self._held[attempt.nonce]  # deterministic: asking again cannot help
                    notes.append((logging.ERROR, _RENEW_CORRUPT, (*what, outcome)))
                elif isinstance(outcome, Exception):
                    held.failures += 1
                    held.due = now + min(every_s, RENEW_RETRY.total_seconds())
                    if held.failures == 1 or now - held.logged >= every_s:
                        held.logged = now
                        failed = (*what, held.failures, outcome, attempt.ttl.total_seconds())
                        notes.append((logging.WARNING, _RENEW_FAILED, failed))
                elif outcome in (RenewStatus.RENEWED, RenewStatus.REWRITTEN):
                    if outcome is RenewStatus.REWRITTEN:
                        notes.append((logging.WARNING, _RENEW_REWRITTEN, what))
                    elif held.failures:
                        notes.append((logging.INFO, _RENEW_RECOVERED, (*what, held.failures)))
                    held.failures = 0
                    held.due = now + every_s
                else:
                    del self._held[attempt.nonce]  # not ours to keep alive any more
                    if outcome is RenewStatus.TAKEN_OVER:
                        notes.append((logging.WARNING, _RENEW_TAKEN, what))
            self._cond.notify_all()
        for level, message, args in notes:
            log.log(level, message, *args)


_RENEW_FAILED = (
    "could not renew the run claim of %s %s (task %s), %d tries in a row: %s; trying again, "
    "it lapses %.0f s after the last renewal that worked"
)
_RENEW_RECOVERED = "renewed the run claim of %s %s (task %s) again after %d failed tries"
_RENEW_REWRITTEN = (
    "the run claim of %s %s (task %s) had lapsed while the task runs (Redis unreachable for "
    "longer than its TTL, or Redis lost it); nobody had claimed it since: claimed it again"
)
_RENEW_TAKEN = (
    "the run claim of %s %s (task %s) lapsed while the task runs and another delivery claimed "
    "it, which may run it too; no longer renewing it"
)
_RENEW_CORRUPT = (
    "the run claim of %s %s (task %s) is not one this package wrote (%s); no longer renewing "
    "it, so a repeat may run the task too"
)


def _renew(attempt: Attempt) -> RenewStatus | Exception:
    try:
        return attempt.policy.claims().renew(
            task_id=attempt.run.task_id,
            nonce=attempt.nonce,
            ttl=attempt.ttl,
            retries=attempt.retries,
            worker=attempt.worker,
        )
    except Exception as exc:  # noqa: BLE001  # the keeper logs it; never raised into a task
        return exc


_keeper: ClaimKeeper | None = None
_keeper_pid = 0
# Only ever taken in processes that run tasks; a prefork parent, which forks, never does.
_keeper_lock = threading.Lock()


def claim_keeper() -> ClaimKeeper:
    """This process's keeper; a forked child gets its own (threads do not survive a fork)."""
    global _keeper, _keeper_pid
    pid = os.getpid()
    with _keeper_lock:
        if _keeper is None or _keeper_pid != pid:
            _keeper, _keeper_pid = ClaimKeeper(), pid
        return _keeper


class RunOnceTask(Task):  # type: ignore[misc]  # Celery is untyped
    """A task that runs once per fired (job, slot), even when its message is repeated.

    Use it as ``base=RunOnceTask``, or let `jobs.hooks.install(app)` make it the app's default
    base. Tasks the scheduler did not send are not claimed and run as usual.
    """

    # How long a "started" claim lives without renewal (renewed every third of it while the
    # task runs): how soon a dead worker's run may be taken over. None: the app's default
    # (install(app, started_ttl=...), 1 minute).
    started_ttl: timedelta | None = None
    # When Redis cannot be reached to claim, or the claim key holds something this package did
    # not write: run anyway (True: a repeat may then run twice) or fail the task with
    # RunClaimUnavailable (False: the run may be lost).
    run_without_claim = True

    @classmethod
    def bind(cls, app: Any) -> Any:
        # A task of this class joins an app (at the latest when the app is finalized, before a
        # worker builds its tracers): from now on, claims must be finished after the body.
        connect_finish()
        return super().bind(app)

    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        request = self.request
        run = scheduled_run(request)
        if run is not None:
            signer = policy_for(self.app).signer
            if signer is not None:
                self._verify(signer, run, request, args, kwargs)
            self._claim(run, request)
        super().before_start(task_id, args, kwargs)

    def _verify(
        self, signer: Signer, run: ScheduledRun, request: Any, args: Any, kwargs: Any
    ) -> None:
        """Refuse a message whose signature is missing or wrong, before anything is claimed:
        a forged message must neither run as the job nor make the genuine fire a repeat."""
        embedded = {name: getattr(request, name, None) for name in EMBEDDED}
        try:
            body = canonical_body(args or (), kwargs or {}, embedded)
        except (TypeError, ValueError) as exc:  # arguments JSON cannot hold: not ours
            reason: str | None = f"arguments not signable: {exc}"
        else:
            signature = request_header(request, HEADER_SIGNATURE)
            reason = signer.verify(signature, self.name, body, run.job, run.slot, run.task_id)
        if reason is None:
            return
        log.error(
            "refused a message for %s %s (task %s, task name %s): %s; dropped, not run and "
            "not claimed",
            run.job,
            run.slot,
            run.task_id,
            self.name,
            reason,
        )
        raise Ignore()

    def claim_ttl(self, request: Any, policy: RunOnce) -> timedelta:
        """How long this delivery's "started" claim lives between two renewals."""
        return self.started_ttl if self.started_ttl is not None else policy.started_ttl

    def _claim(self, run: ScheduledRun, request: Any) -> None:
        policy = policy_for(self.app)
        attempt = Attempt(
            run=run,
            retries=int(getattr(request, "retries", 0) or 0),
            nonce=uuid.uuid4().hex,
            worker=str(getattr(request, "hostname", None) or socket.gethostname()),
            policy=policy,
            ttl=self.claim_ttl(request, policy),
        )
        try:
            reply = _send_claim(attempt)
        except StateCorrupt as exc:
            # Deterministic: sending it again would fail the same way.
            if not self.run_without_claim:
                raise RunClaimUnavailable(run, exc) from exc
            log.error(
                "the run claim of %s %s (task %s, retries %d) at %s is not one this package "
                "wrote (%s): RUNNING IT WITHOUT A CLAIM, and so will every repeat of this "
                "message until that key is deleted",
                run.job,
                run.slot,
                run.task_id,
                attempt.retries,
                policy.keys.run_claim(run.task_id),
                exc,
            )
            return
        except StoreUnavailable as exc:
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
            claim_keeper().hold(attempt)
            if reply.status is ClaimStatus.CLAIMED_OVER_GARBAGE:
                log.warning("replaced an unreadable run claim of task %s", run.task_id)
            if policy.recorder is not None:
                policy.recorder.record(run, "started", worker=attempt.worker)
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
        attempt holding it died, the run happens then instead of never.

        If that send fails, an ``acks_late`` task raises ``Reject(requeue=True)``: its message
        is not acked yet, and Celery hands it back to the broker, which delivers it again.
        Without ``acks_late`` Celery acked the message before any task code ran, so nothing
        can give it back; that is logged as an error.
        """
        run = attempt.run
        wait = timedelta(milliseconds=held.ttl_ms) + DEFER_MARGIN
        try:
            self.signature_from_request(
                request, countdown=wait.total_seconds(), retries=attempt.retries
            ).apply_async()
        except Exception as exc:
            if self.acks_late:
                log.warning(
                    "could not defer repeat of %s %s (task %s, retries %d): %s; rejected it "
                    "with requeue, so the broker delivers this message again",
                    run.job,
                    run.slot,
                    run.task_id,
                    attempt.retries,
                    exc,
                )
                raise Reject(str(exc), requeue=True) from None  # logged above; no chain
            log.error(
                "could not defer repeat of %s %s (task %s, retries %d): %s; its message was "
                "acked when the worker took it (acks_late is off), so it cannot go back to the "
                "broker: if attempt %d on %s dies, this run is lost",
                run.job,
                run.slot,
                run.task_id,
                attempt.retries,
                exc,
                held.retries,
                held.worker,
                exc_info=True,
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


def _send_claim(attempt: Attempt) -> ClaimReply:
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
                started_ttl=attempt.ttl,
            )
        except StoreUnavailable:  # transient; a StateCorrupt is not sent again
            if send == CLAIM_SENDS:
                raise
    raise AssertionError("unreachable")


def _utc_text(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _on_postrun(sender: Any = None, state: str | None = None, retval: Any = None, **_: Any) -> None:
    """Finish the claim of a delivery that ran: done, retrying, or released on a requeue."""
    request = getattr(sender, "request", None)
    attempt = getattr(request, ATTEMPT_ATTR, None)
    if not isinstance(attempt, Attempt):
        return
    setattr(request, ATTEMPT_ATTR, None)
    claim_keeper().drop(attempt)  # first: no renewal may land after the finish
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
    except StateCorrupt as exc:
        log.error(
            "could not finish the run claim of %s %s (task %s): %s; a repeat may run it again",
            run.job,
            run.slot,
            run.task_id,
            exc,
        )
        return
    except StoreUnavailable as exc:
        log.warning(
            "could not finish the run claim of %s %s (task %s): %s; it lapses as started "
            "within %.0f s, after which a repeat would run it again",
            run.job,
            run.slot,
            run.task_id,
            exc,
            attempt.ttl.total_seconds(),
        )
        return
    if status is FinishStatus.TAKEN_OVER:
        log.warning(
            "%s %s (task %s) lost its started claim while it ran (it could not be renewed in "
            "time), and another delivery claimed it meanwhile and may have run it too",
            run.job,
            run.slot,
            run.task_id,
        )
    elif status is FinishStatus.EXPIRED:
        log.warning(
            "%s %s (task %s) lost its started claim while it ran (it could not be renewed in "
            "time); nobody claimed it meanwhile: recorded as finished now",
            run.job,
            run.slot,
            run.task_id,
        )


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
