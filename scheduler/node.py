"""One scheduler node: wires config, lease, engine, dispatch and publisher, and runs them.

Threads, so that nothing waits behind anything else that matters:
- the lease keeper renews (or, as a standby, takes) the lease on its own Redis connection,
  but only while the main loop turns: a stuck loop lets a standby take over;
- the heartbeat publishes this node's record and measures its clock against Redis ``TIME``;
- the outbox publisher (brokers other than the state's Redis) sends claimed slots;
- the caller's thread runs the main loop, one `turn()` at a time.

Nothing one job's data does may stop the loop: a value in Redis that is not ours sets that
job aside (quarantine) or, for a key every job shares, moves the key aside; every other job
keeps firing.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from scheduler import lease as leases
from scheduler import sdnotify
from scheduler.adoption import adopt
from scheduler.alerting import AlertWatch
from scheduler.clock import Clock, SystemClock
from scheduler.config import Config, SchedulerSettings
from scheduler.connections import (
    is_sentinel,
    listen_address,
    redact_url,
    redis_client,
    same_redis,
)
from scheduler.dispatch import Dispatcher, Sent
from scheduler.engine import Due, Engine
from scheduler.errors import (
    ClockSkew,
    LeaseLost,
    SchedulerError,
    StateCorrupt,
    StoreUnavailable,
)
from scheduler.heartbeat import Heartbeat
from scheduler.http_server import StatusServer
from scheduler.jobset import JobSet
from scheduler.jobspec import JobSpec
from scheduler.lease import Lease
from scheduler.messages import MessageFactory
from scheduler.metrics import NodeStats
from scheduler.publisher import OutboxPublisher
from scheduler.quarantine import Quarantine, repairing
from scheduler.reload import PendingReload
from scheduler.reload_diff import plan_reload
from scheduler.runtime import RuntimeJobs
from scheduler.store.claims import Claims
from scheduler.store.keys import Keys
from scheduler.store.redis_time import clearly_off, offset_to_redis
from scheduler.store.runtime import RuntimeJobStore, RuntimeWatch
from scheduler.store.state import StateStore

log = logging.getLogger(__name__)

# Sleeps are capped so a wall-clock step is noticed within this long.
MAX_SLEEP_S = 1.0
STANDBY_POLL_S = 0.25
RETRY_PAUSE_S = 0.05
# After an error no rule foresaw: long enough not to flood the log, short next to a lease.
UNEXPECTED_PAUSE_S = 1.0
# A slot's messages are built this long before it (in the wait before the slot).
PREPARE_AHEAD_S = 2.0
# A main loop that has not turned for this many lease TTLs is stuck: stop renewing the lease
# (a standby takes over) and stop telling systemd's watchdog we are fine.
LOOP_STALL_TTLS = 3.0
# A planned stop waits this long for the publisher before handing the lease over.
PUBLISHER_STOP_S = 5.0
PUBLISHER_JOIN_STEP_S = 0.1


class Node:
    def __init__(self, config: Config, node_id: str, clock: Clock | None = None) -> None:
        self.config = config
        self.node_id = node_id
        self.clock = clock or SystemClock()
        settings = config.scheduler
        self.keys = Keys(settings.namespace)
        self.atomic = same_redis(settings.redis_url, settings.effective_broker_url)
        self.max_offset_s = settings.max_clock_offset.total_seconds()
        ahead_s = max(1, math.ceil(self.max_offset_s))
        # Test knob: False makes the node claim on the lease value alone, ignoring its own
        # deadline, so a test can show that the fence in Redis alone refuses a stale leader.
        self.check_own_deadline = True
        self.lease = Lease(
            redis_client(settings.redis_url), self.keys, node_id, settings.lease_ttl, self.clock
        )
        self.claims = Claims(redis_client(settings.redis_url), self.keys, ahead_s, self.clock)
        self.store = StateStore(self.claims.client, self.keys)
        self.heartbeat = Heartbeat(
            StateStore(redis_client(settings.redis_url), self.keys),
            node_id,
            self.clock,
            settings.max_clock_offset,
            self._describe,
            self.loop_alive,
            # The file's config, not the runtime jobs: drift is about what hosts were given.
            config=lambda: self.config,
        )
        self.factory = MessageFactory.for_settings(settings)
        self.factory.use_jobs(config.jobs.values())  # the file's jobs: what workers read
        self.dispatcher = Dispatcher(
            self.claims,
            self.factory,
            self.atomic,
            settings.outbox_max,
            wait_for_replica=is_sentinel(settings.redis_url),
        )
        # The dead man's switch: checked from the leader loop, throttled, never raising.
        self.alerts = AlertWatch(self.claims, settings, celery_app=self.factory.app)
        self._publisher_claims = Claims(
            redis_client(settings.redis_url), self.keys, ahead_s, self.clock
        )
        self.publisher = OutboxPublisher(self._publisher_claims, self.factory)
        self.engine: Engine | None = None
        # The running jobs: the config's and the runtime jobs (`jobs add`) it does not shadow.
        self.jobset = JobSet(
            config, RuntimeWatch(RuntimeJobStore(self.claims.client, self.keys), self.clock)
        )
        self.quarantine = Quarantine(self.store, self.clock)
        self.stats = NodeStats()
        listen = settings.http_listen
        self.http = StatusServer(self, listen_address(listen) if listen else None)
        # [scheduler] keys a reload changed that only a restart applies (shown by `status`).
        self.restart_needed: tuple[str, ...] = ()
        self._started_with = settings
        self._leading_token: int | None = None
        self._prepared_for: int | None = None
        self._turned_at = self.clock.monotonic()
        self._stop = threading.Event()
        # The keeper stops last: it renews the lease while the publisher finishes its batch.
        self._keeper_stop = threading.Event()
        self._wake = threading.Event()
        self._reload = threading.Event()
        self._reloading: PendingReload | None = None
        self._outbox_work = threading.Event()

    @property
    def jobs(self) -> Mapping[str, JobSpec]:
        """The jobs this node runs (config and runtime), read-only."""
        return MappingProxyType(self.jobset.jobs)

    @property
    def runtime(self) -> RuntimeWatch:
        return self.jobset.watch

    @property
    def runtime_jobs(self) -> RuntimeJobs:
        return self.jobset.runtime

    # -- control, safe to call from signal handlers -----------------------------------------

    def request_stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def request_reload(self) -> None:
        self._reload.set()
        self._wake.set()

    # -- main loop ---------------------------------------------------------------------------

    def run(self) -> None:
        """Run until request_stop(); on the way out hand the lease over."""
        settings = self.config.scheduler
        log.info(
            "node %s starting: %d jobs, state %s, broker %s (%s), config %s",
            self.node_id,
            len(self.config.jobs),
            redact_url(settings.redis_url),
            redact_url(settings.effective_broker_url),
            "claim and enqueue atomic" if self.atomic else "claim to an outbox, then publish",
            self.config.hash,
        )
        keeper = threading.Thread(
            target=leases.keep,
            args=(self.lease, self._keeper_stop, self._wake, self.may_lead),
            name="lease",
            daemon=True,
        )
        others = [threading.Thread(target=self.heartbeat.run, args=(self._stop,), daemon=True)]
        publisher: threading.Thread | None = None
        if self.atomic:
            # Build every job's message template now, so the first burst only fills them in.
            others.append(threading.Thread(target=self._warm_up, name="warm-up", daemon=True))
        else:
            publisher = threading.Thread(
                target=self.publisher.run,
                args=(self.lease, self._stop, self._outbox_work),
                name="publisher",
                daemon=True,
            )
        self.http.start()
        for thread in [keeper, *others, *([publisher] if publisher else [])]:
            thread.start()
        try:
            while not self._stop.is_set():
                started = self.clock.monotonic()
                sleep_s = self.turn()
                self.stats.turned(self.clock.monotonic() - started)
                if sleep_s > 0:
                    self._wake.wait(sleep_s)
                    self._wake.clear()
        finally:
            self._shut_down(keeper, publisher, others)

    def turn(self) -> float:
        """One pass of the main loop: reload if asked, then lead or stand by. Returns how long
        to wait before the next pass (a wake-up may cut it short)."""
        self._turned_at = self.clock.monotonic()
        if self._reload.is_set():
            self._reload.clear()
            self._start_reload()
        if self._reloading is not None and self._reloading.done():
            pending, self._reloading = self._reloading, None
            try:
                self._apply_reload(pending)
            finally:
                sdnotify.ready()  # the reload is over, applied or refused (logged either way)
        if self.lease.value is not None and (self.lease.held() or not self.check_own_deadline):
            return self._lead_once()
        self._step_down()
        try:
            self._refresh_runtime()  # kept fresh for the heartbeat; a take-over reads them anyway
        except Exception:  # a standby's view must not stop its loop
            log.exception("runtime jobs: unexpected error while reading them; tried again")
        return STANDBY_POLL_S

    def loop_alive(self) -> bool:
        """Whether the main loop turned recently (it also counts each chunk of a burst)."""
        stall_s = LOOP_STALL_TTLS * self.lease.ttl_ms / 1000
        return self.clock.monotonic() - self._turned_at < stall_s

    def may_lead(self) -> bool:
        return self.heartbeat.clock_ok and self.loop_alive()

    def _shut_down(
        self,
        keeper: threading.Thread,
        publisher: threading.Thread | None,
        others: list[threading.Thread],
    ) -> None:
        """Stop the publisher, then hand the lease over (a standby is waiting), then the rest:
        a publisher still sending after the release would repeat what the next leader sends."""
        self.heartbeat.stopping()  # after it, the heartbeat tells systemd nothing more
        self._stop.set()
        self._outbox_work.set()
        if publisher is not None:
            for _ in range(round(PUBLISHER_STOP_S / PUBLISHER_JOIN_STEP_S)):
                self._turned_at = self.clock.monotonic()  # waiting here is not a stuck loop
                publisher.join(timeout=PUBLISHER_JOIN_STEP_S)
                if not publisher.is_alive():
                    break
            if publisher.is_alive():
                log.warning("the outbox publisher did not stop in time; releasing anyway")
        self._keeper_stop.set()
        keeper.join(timeout=2)  # it only waits on the stop event; no renewal may race the release
        self._step_down()
        try:
            self.lease.release()
        except StoreUnavailable as exc:
            log.warning("could not release the lease (it will expire): %s", exc)
        for thread in others:
            thread.join(timeout=3)
        try:
            self.heartbeat.store.forget_nodes([self.node_id])
        except StoreUnavailable as exc:
            log.warning("could not remove this node's record: %s", exc)
        self.alerts.close()
        self.factory.close()
        self.http.stop()
        log.info("node %s stopped", self.node_id)

    def _warm_up(self) -> None:
        try:
            for job in list(self.jobset.jobs.values()):
                if self._stop.is_set():
                    return
                self.factory.template(job)
        except Exception:  # a broker hiccup here only costs speed later
            log.warning("could not prepare message templates in advance", exc_info=True)

    def _describe(self) -> dict[str, Any]:
        """This node's live facts for its heartbeat record."""
        return {
            "config_hash": self.config.hash,
            "jobs": len(self.jobset.jobs),
            "runtime_jobs": len(self.jobset.jobs) - len(self.config.jobs),
            "leader": self.lease.held(),
            "fencing_token": self.lease.token,
            "atomic_enqueue": self.atomic,
            "quarantined": sorted(self.quarantine.jobs),
            "next_slot_at": self._next_slot_at(),
            "restart_needed": list(self.restart_needed),
        }

    def _next_slot_at(self) -> int | None:
        engine = self.engine  # read once: the main loop may drop it meanwhile
        return engine.next_slot_s() if engine is not None else None

    # -- leading -----------------------------------------------------------------------------

    def _lead_once(self) -> float:
        token, value = self.lease.token, self.lease.value
        if token is None or value is None:
            return STANDBY_POLL_S
        try:
            if self._leading_token != token:
                self._take_over(value, token)
            elif self._refresh_runtime():
                self._apply_runtime(value)
            engine = self.engine
            assert engine is not None
            retry = self.quarantine.to_retry(engine.watermarks.keys())
            if retry:
                engine.reset(self._adopt(value, retry))
            now = self.clock.time()
            next_s = engine.next_slot_s()
            if next_s is not None and next_s <= now:
                self._check_clock()
                due = engine.take_due(int(now))
                if due:
                    self._send(value, token, due)
        except LeaseLost as exc:
            log.warning("%s; standing by", exc)
            self.lease.forget()
            self._step_down()
            return 0.0
        except ClockSkew as exc:
            log.error("%s: stepping down; nothing is fired until it agrees again", exc)
            self.heartbeat.distrust_clock()
            self._give_up_lease()
            return STANDBY_POLL_S
        except StoreUnavailable as exc:
            log.warning("redis unavailable while leading: %s", exc)
            return RETRY_PAUSE_S
        except StateCorrupt as exc:  # one that no quarantine or set-aside could take care of
            log.error("%s; re-reading the state from Redis in %gs", exc, UNEXPECTED_PAUSE_S)
            self._step_down()
            return UNEXPECTED_PAUSE_S
        except Exception:  # no job's data may stop the loop: start over from what Redis holds
            log.exception(
                "leader loop: unexpected error; re-reading the state from Redis in %gs",
                UNEXPECTED_PAUSE_S,
            )
            self._step_down()
            return UNEXPECTED_PAUSE_S
        self.alerts.check(value, token, self.jobset.jobs)
        return self._prepare_next(token)

    def _prepare_next(self, token: int) -> float:
        """How long to wait for the next slot; build its messages meanwhile when it is close."""
        engine = self.engine
        next_s = engine.next_slot_s() if engine else None
        # Woken for the next look at the runtime jobs too, so a change is applied within 1 s.
        longest = min(MAX_SLEEP_S, self.runtime.due_in())
        sleep_s = longest if next_s is None else min(longest, next_s - self.clock.time())
        if (
            engine is not None
            and next_s is not None
            and next_s != self._prepared_for
            and next_s - self.clock.time() <= PREPARE_AHEAD_S
        ):
            self.dispatcher.prepare(engine.upcoming(next_s), token)
            self._prepared_for = next_s
            sleep_s = min(sleep_s, next_s - self.clock.time())
        return max(sleep_s, 0.0)

    def _check_clock(self) -> None:
        """Before taking due slots: is our clock still where Redis says it is? A step on this
        host (bad NTP, a VM resumed) must not fire the future, nor anything early."""
        offset_s, round_trip_s = offset_to_redis(self.claims.client, self.clock)
        if clearly_off(offset_s, round_trip_s, self.max_offset_s):
            raise ClockSkew(
                f"this node's clock is {-offset_s:+.3f}s off Redis TIME "
                f"(max_clock_offset {self.max_offset_s:g}s)"
            )

    def _take_over(self, lease_value: str, token: int) -> None:
        self._refresh_runtime(force=True)
        jobs = sorted(set(self.jobset.jobs) - set(self.quarantine.jobs))
        self.engine = Engine(self.jobset.jobs)
        self.engine.load(self._adopt(lease_value, jobs))
        self._leading_token = token
        self._outbox_work.set()  # drain whatever a former leader left
        log.info("leading with fencing token %d: %d jobs", token, len(jobs))

    def _adopt(self, lease_value: str, jobs: Iterable[str]) -> dict[str, int]:
        return adopt(self.claims, lease_value, int(self.clock.time()), jobs)

    def _refresh_runtime(self, force: bool = False) -> bool:
        """Re-read the runtime jobs if they changed in Redis; True when merged anew."""
        return self.jobset.refresh(self.config, force)

    def _apply_runtime(self, lease_value: str) -> None:
        """Run the freshly merged jobs: new ones adopt their watermark, removed ones stop."""
        assert self.engine is not None
        added = set(self.jobset.jobs) - set(self.engine.jobs) - set(self.quarantine.jobs)
        try:
            self.engine.replace_jobs(self.jobset.jobs, self._adopt(lease_value, added))
        except Exception:
            self.runtime.forget_version()  # tried again at the next look
            raise
        self.factory.forget_templates()
        if self.atomic:
            threading.Thread(target=self._warm_up, name="warm-up", daemon=True).start()
        log.info(
            "runtime jobs changed: running %d jobs (%d at run time)",
            len(self.jobset.jobs),
            len(self.jobset.jobs) - len(self.config.jobs),
        )

    def _send(self, lease_value: str, token: int, due: Due) -> None:
        # A failed send is resent as it was: claims already made answer "already ours".
        while True:
            try:
                sent = repairing(
                    self.claims,
                    lease_value,
                    lambda: self.dispatcher.send(lease_value, token, due, self._may_go_on),
                )
                break
            except StoreUnavailable as exc:
                if not self._may_go_on():
                    raise LeaseLost(f"dispatch failed and the lease is ending: {exc}") from exc
                log.warning("dispatch failed, retrying: %s", exc)
                self._stop.wait(RETRY_PAUSE_S)
        self.stats.dispatched(due, sent, self.clock.time())
        self._after_send(lease_value, due, sent)
        if not self.atomic:
            self._outbox_work.set()

    def _after_send(self, lease_value: str, due: Due, sent: Sent) -> None:
        """Bring the engine back in line with Redis for the slots that were not claimed."""
        assert self.engine is not None
        reread = set(sent.unclaimed)
        # A garbage watermark restarts its job from now (adopt records it); anything else
        # that is wrong for one job quarantines it. Each in one batch: there may be thousands.
        wrong = [c for c in sent.corrupt if c.key != self.keys.watermarks]
        reread.update(c.job for c in sent.corrupt if c.key == self.keys.watermarks and c.job)
        if wrong:
            self.engine.drop({c.job for c in wrong if c.job is not None})
            self.quarantine.add(wrong)
        if self.quarantine.jobs:
            not_fired = {corruption.job for corruption in sent.corrupt} | sent.unclaimed
            self.quarantine.release({job.name for job, _ in due.fires} - not_fired)
        reread -= set(self.quarantine.jobs)
        if reread:
            self.engine.reset(self._adopt(lease_value, reread))

    def _may_go_on(self) -> bool:
        """Between two chunks of a burst: stop claiming on SIGTERM or at the lease deadline."""
        self._turned_at = self.clock.monotonic()
        held = self.lease.held() or (not self.check_own_deadline and self.lease.value is not None)
        return held and not self._stop.is_set()

    def _give_up_lease(self) -> None:
        self._step_down()
        try:
            self.lease.release()
        except SchedulerError as exc:
            log.warning("could not release the lease (it will expire): %s", exc)
            self.lease.forget()

    def _step_down(self) -> None:
        if self._leading_token is None and self.engine is None:
            return
        if self._leading_token is not None:
            log.info("no longer leading (fencing token %d)", self._leading_token)
        self._leading_token = None
        self.engine = None
        self._prepared_for = None

    def _start_reload(self) -> None:
        if self._reloading is not None:
            log.warning("reload refused: the previous reload is still reading the config")
            return
        sdnotify.reloading()
        self._reloading = PendingReload(self.config.path, self.clock)

    def _apply_reload(self, pending: PendingReload) -> None:
        fresh = pending.config
        if fresh is None:
            for problem in pending.problems:
                log.error("reload refused, keeping the running config: %s", problem)
            return
        runtime, jobs = self.jobset.merged(fresh)
        plan = plan_reload(self.config, self._started_with, fresh, self.jobset.jobs, jobs)
        if self.engine is not None and self.lease.value is not None:
            added = set(jobs) - set(self.engine.jobs) - set(self.quarantine.jobs)
            try:
                self.engine.replace_jobs(jobs, self._adopt(self.lease.value, added))
            except SchedulerError as exc:
                log.warning("reload: could not read new watermarks (%s); standing by", exc)
                self.lease.forget()
                self._step_down()
                return
            except Exception:  # a value no validator foresaw: the running config goes on
                log.exception("reload refused: the new config could not be applied")
                self._step_down()  # the engine is re-read from Redis with the running config
                return
        self.config = plan.config
        self.jobset.use(runtime, jobs)
        self._apply_settings(plan.config.scheduler)
        self.restart_needed = plan.restart_needed
        self.factory.forget_templates()
        self.factory.use_jobs(fresh.jobs.values())
        self.publisher.forget_declarations()
        if self.atomic:
            threading.Thread(target=self._warm_up, name="warm-up", daemon=True).start()
        kept = f"; {len(runtime.jobs)} runtime jobs kept" if runtime.jobs else ""
        log.info(
            "config reloaded: %d jobs, hash %s; %s%s",
            len(fresh.jobs),
            fresh.hash,
            plan.summary(),
            kept,
        )
        if plan.restart_needed:
            log.warning(
                "reload: %s changed and take effect only after a restart; running with the "
                "values read at start",
                ", ".join(plan.restart_needed),
            )

    def _apply_settings(self, settings: SchedulerSettings) -> None:
        """The [scheduler] keys a running node takes at once (reload_diff.APPLIED_LIVE;
        the jobs' time zone and includes arrive with the jobs, metrics_jobs_max is read at
        each scrape)."""
        self.alerts.settings = settings
        self.max_offset_s = settings.max_clock_offset.total_seconds()
        self.heartbeat.limit_s = self.max_offset_s
        ahead_s = max(1, math.ceil(self.max_offset_s))
        self.claims.max_ahead_s = ahead_s
        self._publisher_claims.max_ahead_s = ahead_s
        self.dispatcher.outbox_cap = 0 if self.atomic else settings.outbox_max
