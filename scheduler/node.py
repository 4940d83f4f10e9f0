"""One scheduler node: wires config, lease, engine, dispatch and publisher, and runs them.

Threads, so that nothing waits behind anything else that matters:
- the lease keeper renews (or, as a standby, takes) the lease on its own Redis connection;
- the heartbeat publishes this node's record and measures its clock against Redis ``TIME``;
- the outbox publisher (brokers other than the state's Redis) sends claimed slots;
- the caller's thread runs the engine while this node holds the lease.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis

from scheduler import lease as leases
from scheduler.clock import Clock, SystemClock
from scheduler.config import Config, load_config
from scheduler.connections import is_sentinel, redact_url, redis_client, same_redis
from scheduler.dispatch import Dispatcher
from scheduler.engine import Due, Engine
from scheduler.errors import ConfigError, LeaseLost
from scheduler.heartbeat import Heartbeat
from scheduler.lease import Lease
from scheduler.messages import MessageFactory
from scheduler.publisher import OutboxPublisher
from scheduler.records import AdoptFlag
from scheduler.sdnotify import notify
from scheduler.store.keys import Keys
from scheduler.store.state import StateStore
from scheduler.wire import slot_text

log = logging.getLogger(__name__)

# Sleeps are capped so a wall-clock step is noticed within this long.
MAX_SLEEP_S = 1.0
STANDBY_POLL_S = 0.25
RETRY_PAUSE_S = 0.05
# A slot's messages are built this long before it (in the wait before the slot).
PREPARE_AHEAD_S = 2.0


class Node:
    def __init__(self, config: Config, node_id: str, clock: Clock | None = None) -> None:
        self.config = config
        self.node_id = node_id
        self.clock = clock or SystemClock()
        settings = config.scheduler
        self.keys = Keys(settings.namespace)
        self.atomic = same_redis(settings.redis_url, settings.effective_broker_url)
        self.lease = Lease(
            redis_client(settings.redis_url), self.keys, node_id, settings.lease_ttl, self.clock
        )
        self.store = StateStore(redis_client(settings.redis_url), self.keys)
        self.heartbeat = Heartbeat(
            StateStore(redis_client(settings.redis_url), self.keys),
            node_id,
            self.clock,
            settings.max_clock_offset,
            self._describe,
        )
        self.factory = MessageFactory(
            settings.namespace, settings.effective_broker_url, settings.broker_transport_options
        )
        self.dispatcher = Dispatcher(
            self.store,
            self.factory,
            self.atomic,
            settings.outbox_max,
            wait_for_replica=is_sentinel(settings.redis_url),
        )
        self.publisher = OutboxPublisher(
            StateStore(redis_client(settings.redis_url), self.keys), self.factory, config.jobs
        )
        self.engine: Engine | None = None
        self._leading_token: int | None = None
        self._prepared_for: int | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._reload = threading.Event()
        self._outbox_work = threading.Event()

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
        threads = [
            threading.Thread(
                target=leases.keep,
                args=(self.lease, self._stop, self._wake, lambda: self.heartbeat.clock_ok),
                name="lease",
                daemon=True,
            ),
            threading.Thread(target=self.heartbeat.run, args=(self._stop,), daemon=True),
        ]
        if self.atomic:
            # Build every job's message template now, so the first burst only fills them in.
            threads.append(threading.Thread(target=self._warm_up, name="warm-up", daemon=True))
        else:
            threads.append(
                threading.Thread(
                    target=self.publisher.run,
                    args=(self.lease, self._stop, self._outbox_work),
                    name="publisher",
                    daemon=True,
                )
            )
        for thread in threads:
            thread.start()
        try:
            while not self._stop.is_set():
                if self._reload.is_set():
                    self._reload.clear()
                    self._apply_reload()
                if self.lease.held():
                    self._lead_once()
                else:
                    self._step_down()
                    self._wake.wait(STANDBY_POLL_S)
                    self._wake.clear()
        finally:
            self._shut_down(threads)

    def _shut_down(self, threads: list[threading.Thread]) -> None:
        """Hand the lease over first (a standby is waiting), then wind the rest down."""
        notify("STOPPING=1")
        self._stop.set()
        self._outbox_work.set()
        keeper, *others = threads
        keeper.join(timeout=2)  # it only waits on the stop event; no renewal may race the release
        self._step_down()
        try:
            self.lease.release()
        except redis.RedisError as exc:
            log.warning("could not release the lease (it will expire): %s", exc)
        for thread in others:
            thread.join(timeout=3)
        try:
            self.heartbeat.store.forget_nodes([self.node_id])
        except redis.RedisError as exc:
            log.warning("could not remove this node's record: %s", exc)
        self.factory.close()
        log.info("node %s stopped", self.node_id)

    def _warm_up(self) -> None:
        try:
            for job in list(self.config.jobs.values()):
                if self._stop.is_set():
                    return
                self.factory.template(job)
        except Exception:  # a broker hiccup here only costs speed later
            log.warning("could not prepare message templates in advance", exc_info=True)

    def _describe(self) -> dict[str, Any]:
        """This node's live facts for its heartbeat record."""
        return {
            "config_hash": self.config.hash,
            "jobs": len(self.config.jobs),
            "leader": self.lease.held(),
            "fencing_token": self.lease.token,
            "atomic_enqueue": self.atomic,
        }

    def _lead_once(self) -> None:
        token, value = self.lease.token, self.lease.value
        if token is None or value is None:
            return
        try:
            if self._leading_token != token:
                self._take_over(value, token)
            assert self.engine is not None
            due = self.engine.take_due(int(self.clock.time()))
            if due:
                self._send(value, token, due)
        except LeaseLost as exc:
            log.warning("%s; standing by", exc)
            self.lease.forget()
            return
        except redis.RedisError as exc:
            log.warning("redis error while leading: %s", exc)
            self._wake.wait(RETRY_PAUSE_S)
            return
        next_s = self.engine.next_slot_s() if self.engine else None
        sleep_s = MAX_SLEEP_S if next_s is None else min(MAX_SLEEP_S, next_s - self.clock.time())
        # Build the next slot's messages while waiting for it, once it is close enough.
        if (
            next_s is not None
            and self.engine is not None
            and next_s != self._prepared_for
            and next_s - self.clock.time() <= PREPARE_AHEAD_S
        ):
            self.dispatcher.prepare(self.engine.upcoming(next_s), token)
            self._prepared_for = next_s
            sleep_s = min(sleep_s, next_s - self.clock.time())
        if sleep_s > 0:
            self._wake.wait(sleep_s)
            self._wake.clear()

    def _take_over(self, lease_value: str, token: int) -> None:
        jobs = sorted(self.config.jobs)
        adopted = self.store.adopt(lease_value, int(self.clock.time()), jobs)
        started = [job for job, (_, flag) in adopted.items() if flag == AdoptFlag.STARTED_NOW]
        for job, (_, flag) in adopted.items():
            if flag == AdoptFlag.RESET_UNREADABLE:
                log.error("watermark of %s in Redis was unreadable; starting it from now", job)
        if started:
            log.info(
                "%d job(s) without a watermark start from now (%s): %s",
                len(started),
                slot_text(int(self.clock.time())),
                ", ".join(started[:20]) + (" ..." if len(started) > 20 else ""),
            )
        self.engine = Engine(self.config.jobs)
        self.engine.load({job: mark for job, (mark, _) in adopted.items()})
        self._leading_token = token
        self._outbox_work.set()  # drain whatever a former leader left
        log.info("leading with fencing token %d: %d jobs", token, len(jobs))

    def _send(self, lease_value: str, token: int, due: Due) -> None:
        # A failed send is resent as it was: claims already made answer "already ours".
        while True:
            try:
                self.dispatcher.send(lease_value, token, due, self._may_go_on)
                break
            except redis.RedisError as exc:
                if not self._may_go_on():
                    raise LeaseLost(f"dispatch failed and the lease is ending: {exc}") from exc
                log.warning("dispatch failed, retrying: %s", exc)
                time.sleep(RETRY_PAUSE_S)
        if not self.atomic:
            self._outbox_work.set()

    def _may_go_on(self) -> bool:
        """Between two chunks of a burst: stop claiming on SIGTERM or at the lease deadline."""
        return self.lease.held() and not self._stop.is_set()

    def _step_down(self) -> None:
        if self._leading_token is None:
            return
        log.info("no longer leading (fencing token %d)", self._leading_token)
        self._leading_token = None
        self.engine = None

    def _apply_reload(self) -> None:
        try:
            fresh = load_config(self.config.path)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload refused, keeping the running config: %s", problem)
            return
        old, new = self.config.scheduler, fresh.scheduler
        if (old.redis_url, old.effective_broker_url, old.namespace) != (
            new.redis_url,
            new.effective_broker_url,
            new.namespace,
        ):
            log.error("reload refused: redis_url, broker_url and namespace need a restart")
            return
        self.config = fresh
        self.publisher.jobs = fresh.jobs
        self.factory.forget_templates()
        if self.atomic:
            threading.Thread(target=self._warm_up, name="warm-up", daemon=True).start()
        if self.engine is not None and self.lease.value is not None:
            added = sorted(set(fresh.jobs) - set(self.engine.jobs))
            try:
                adopted = self.store.adopt(self.lease.value, int(self.clock.time()), added)
            except (LeaseLost, redis.RedisError) as exc:
                log.warning("reload: could not read new watermarks (%s); standing by", exc)
                self.lease.forget()
                return
            self.engine.replace_jobs(fresh.jobs, {job: mark for job, (mark, _) in adopted.items()})
        log.info("config reloaded: %d jobs, hash %s", len(fresh.jobs), fresh.hash)
