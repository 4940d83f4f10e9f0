"""One scheduler node: wires config, lease, engine and dispatch, and runs until stopped.

Three threads, so that nothing waits behind anything else that matters:
- the lease keeper renews (or, as a standby, takes) the lease on its own Redis connection;
- the heartbeat publishes this node's record and measures its clock against Redis ``TIME``;
- the caller's thread runs the engine while this node holds the lease.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass

import redis

from scheduler import __version__
from scheduler.clock import Clock, SystemClock, offset_to_redis
from scheduler.config import Config, load_config
from scheduler.connections import redact_url, redis_client, same_redis, tzdata_version
from scheduler.dispatch import Dispatcher
from scheduler.engine import Due, Engine
from scheduler.errors import ConfigError, LeaseLost, PublishFailed
from scheduler.lease import Lease
from scheduler.messages import MessageFactory, slot_text
from scheduler.sdnotify import notify
from scheduler.store.keys import Keys
from scheduler.store.state import AdoptFlag, StateStore

log = logging.getLogger(__name__)

# Sleeps are capped so a wall-clock step is noticed within this long.
MAX_SLEEP_S = 1.0
HEARTBEAT_S = 1.0
STANDBY_POLL_S = 0.25
RETRY_PAUSE_S = 0.05
BROKER_RETRY_S = 0.5
# Node records older than this are dropped from Redis; `status` shows only recent ones.
FORGET_NODE_AFTER_S = 86_400


@dataclass(slots=True)
class ClockCheck:
    offset_s: float = 0.0
    ok: bool = True


class Node:
    def __init__(self, config: Config, node_id: str, clock: Clock | None = None) -> None:
        self.config = config
        self.node_id = node_id
        self.clock = clock or SystemClock()
        settings = config.scheduler
        self.keys = Keys(settings.namespace)
        self.lease = Lease(
            redis_client(settings.redis_url), self.keys, node_id, settings.lease_ttl, self.clock
        )
        self.store = StateStore(redis_client(settings.redis_url), self.keys)
        self._heartbeat_store = StateStore(redis_client(settings.redis_url), self.keys)
        self.atomic = same_redis(settings.redis_url, settings.effective_broker_url)
        self.engine: Engine | None = None
        self._leading_token: int | None = None
        self._dispatcher: Dispatcher | None = None
        self.clock_check = ClockCheck()
        self.started_at = time.time()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._reload = threading.Event()

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
            "claim and enqueue atomic" if self.atomic else "claim, then publish",
            self.config.hash,
        )
        threads = [
            threading.Thread(target=self._keep_lease, name="lease", daemon=True),
            threading.Thread(target=self._beat, name="heartbeat", daemon=True),
        ]
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
            notify("STOPPING=1")
            self._stop.set()
            for thread in threads:
                thread.join(timeout=2)
            self._step_down()
            try:
                self.lease.release()
                self._heartbeat_store.forget_nodes([self.node_id])
            except redis.RedisError as exc:
                log.warning("could not release the lease (it will expire): %s", exc)
            log.info("node %s stopped", self.node_id)

    def _lead_once(self) -> None:
        token, value = self.lease.token, self.lease.value
        if token is None or value is None:
            return
        try:
            if self._leading_token != token:
                self._take_over(value, token)
            assert self.engine is not None
            assert self._dispatcher is not None
            if self._dispatcher.pending:
                self._dispatcher.flush()
            due = self.engine.take_due(int(self.clock.time()))
            if due:
                self._send(value, token, due)
        except PublishFailed as exc:
            log.warning("%s; retrying", exc)
            self._wake.wait(BROKER_RETRY_S)
            return
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
        if sleep_s > 0:
            self._wake.wait(sleep_s)
            self._wake.clear()

    def _take_over(self, lease_value: str, token: int) -> None:
        jobs = sorted(self.config.jobs)
        adopted = self.store.adopt(lease_value, int(self.clock.time()), jobs)
        for job, (mark, flag) in adopted.items():
            if flag == AdoptFlag.RESET_UNREADABLE:
                log.error("watermark of %s in Redis was unreadable; starting it from now", job)
            elif flag == AdoptFlag.STARTED_NOW:
                log.info("job %s has no watermark yet; first slot after %s", job, slot_text(mark))
        self.engine = Engine(self.config.jobs)
        self.engine.load({job: mark for job, (mark, _) in adopted.items()})
        settings = self.config.scheduler
        factory = MessageFactory(
            settings.namespace, settings.effective_broker_url, settings.broker_transport_options
        )
        self._dispatcher = Dispatcher(self.store, factory, self.atomic)
        self._leading_token = token
        log.info("leading with fencing token %d: %d jobs", token, len(jobs))

    def _send(self, lease_value: str, token: int, due: Due) -> None:
        assert self._dispatcher is not None
        # A failed send is resent as it was: claims already made answer "already ours".
        while True:
            try:
                self._dispatcher.send(lease_value, token, due)
                return
            except redis.RedisError as exc:
                if not self.lease.held() or self._stop.is_set():
                    log.warning("dispatch failed and the lease is gone: %s", exc)
                    raise LeaseLost("lease deadline passed during dispatch") from exc
                log.warning("dispatch failed, retrying: %s", exc)
                time.sleep(RETRY_PAUSE_S)

    def _step_down(self) -> None:
        if self._leading_token is None:
            return
        log.info("no longer leading (fencing token %d)", self._leading_token)
        self._leading_token = None
        self.engine = None
        if self._dispatcher is not None:
            self._dispatcher.close()
            self._dispatcher = None

    def _apply_reload(self) -> None:
        try:
            fresh = load_config(self.config.path)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload refused, keeping the running config: %s", problem)
            return
        old = self.config.scheduler
        new = fresh.scheduler
        if (old.redis_url, old.effective_broker_url, old.namespace) != (
            new.redis_url,
            new.effective_broker_url,
            new.namespace,
        ):
            log.error("reload refused: redis_url, broker_url and namespace need a restart")
            return
        self.config = fresh
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

    # -- lease keeper thread -----------------------------------------------------------------

    def _keep_lease(self) -> None:
        renew_every_s = self.lease.ttl_ms / 1000 / 3
        while not self._stop.is_set():
            try:
                if self.lease.value is not None:
                    if not self.clock_check.ok:
                        log.error("clock offset too large: giving up the lease")
                        self.lease.release()
                    elif not self.lease.renew():
                        self._wake.set()
                    self._stop.wait(renew_every_s)
                    continue
                if self.clock_check.ok and self.lease.try_acquire():
                    self._wake.set()
                    continue
                self.lease.wait_for_vacancy(STANDBY_POLL_S)
            except redis.RedisError as exc:
                log.warning("lease: redis unreachable: %s", exc)
                self._stop.wait(STANDBY_POLL_S)

    # -- heartbeat thread --------------------------------------------------------------------

    def _beat(self) -> None:
        host = socket.gethostname()
        limit_s = self.config.scheduler.max_clock_offset.total_seconds()
        ready = False
        while not self._stop.is_set():
            try:
                offset_s, _ = offset_to_redis(self._heartbeat_store.client, self.clock)
                ok = abs(offset_s) <= limit_s
                if ok != self.clock_check.ok:
                    if ok:
                        log.info("clock offset to Redis back within limit: %.3fs", offset_s)
                    else:
                        log.error(
                            "clock offset to Redis is %.3fs (limit %.3fs): refusing leadership",
                            offset_s,
                            limit_s,
                        )
                self.clock_check = ClockCheck(offset_s, ok)
                self._heartbeat_store.heartbeat(
                    self.node_id,
                    {
                        "node_id": self.node_id,
                        "host": host,
                        "pid": os.getpid(),
                        "version": __version__,
                        "started_at": round(self.started_at, 3),
                        "seen_at": round(self.clock.time() + offset_s, 3),
                        "clock_offset_ms": round(offset_s * 1000, 1),
                        "clock_ok": ok,
                        "config_hash": self.config.hash,
                        "tzdata": tzdata_version(),
                        "leader": self.lease.held(),
                        "fencing_token": self.lease.token,
                        "jobs": len(self.config.jobs),
                        "atomic_enqueue": self.atomic,
                    },
                )
                if not ready:
                    notify("READY=1")
                    ready = True
            except redis.RedisError as exc:
                log.warning("heartbeat: redis unreachable: %s", exc)
                notify(f"STATUS=Redis unreachable: {exc}")
            # The process is alive and looping even when Redis is not: systemd must not
            # restart a healthy standby because Redis is down.
            notify("WATCHDOG=1")
            self._stop.wait(HEARTBEAT_S)
