"""A node's heartbeat: its record in Redis, its clock against Redis TIME, and the state epoch.

Every second the node writes who it is (host, pid, version, config hash, tzdata, leader or
not) and measures its clock offset to Redis; above `max_clock_offset` it refuses leadership.
It also watches the state epoch, a random id written once per Redis dataset: when the epoch
vanishes, Redis lost its data (a restart without persistence), and the node says so.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import redis

from scheduler import __version__
from scheduler.clock import Clock, offset_to_redis, utc
from scheduler.connections import tzdata_version
from scheduler.sdnotify import notify
from scheduler.store.state import StateStore

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0


class Heartbeat:
    def __init__(
        self,
        store: StateStore,
        node_id: str,
        clock: Clock,
        max_offset: timedelta,
        describe: Callable[[], dict[str, Any]],
    ) -> None:
        self.store = store
        self.node_id = node_id
        self.clock = clock
        self.limit_s = max_offset.total_seconds()
        self.describe = describe  # the node's live facts: leader, token, config hash...
        self.offset_s = 0.0
        # Not before the clock was measured once: a skewed node must never lead, even briefly.
        self.clock_ok = False
        self._measured = False
        self.started_at = time.time()
        self._host = socket.gethostname()
        self._epoch: bytes | None = None
        self._ready = False

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.beat()
            stop.wait(HEARTBEAT_S)

    def beat(self) -> None:
        try:
            self._measure_clock()
            self._watch_epoch()
            self.store.heartbeat(self.node_id, self.record())
            if not self._ready:
                notify("READY=1")
                self._ready = True
        except redis.RedisError as exc:
            log.warning("heartbeat: redis unreachable: %s", exc)
            notify(f"STATUS=Redis unreachable: {exc}")
        # The process is alive even when Redis is not: systemd must not restart a healthy
        # standby because Redis is down.
        notify("WATCHDOG=1")

    def record(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "host": self._host,
            "pid": os.getpid(),
            "version": __version__,
            "started_at": round(self.started_at, 3),
            "seen_at": round(self.clock.time() + self.offset_s, 3),
            "clock_offset_ms": round(self.offset_s * 1000, 1),
            "clock_ok": self.clock_ok,
            "tzdata": tzdata_version(),
            **self.describe(),
        }

    def _measure_clock(self) -> None:
        offset_s, _ = offset_to_redis(self.store.client, self.clock)
        ok = abs(offset_s) <= self.limit_s
        if ok != self.clock_ok or not self._measured:
            if ok and self._measured:
                log.info("clock offset to Redis back within limit: %.3fs", offset_s)
            elif not ok:
                log.error(
                    "clock offset to Redis is %.3fs (limit %.3fs): refusing leadership",
                    offset_s,
                    self.limit_s,
                )
        self.offset_s, self.clock_ok, self._measured = offset_s, ok, True

    def _watch_epoch(self) -> None:
        keys = self.store.keys
        client = self.store.client
        client.set(keys.epoch, secrets.token_hex(8), nx=True)
        epoch: bytes | None = client.get(keys.epoch)  # type: ignore[assignment]
        if self._epoch is not None and epoch != self._epoch:
            now_s = self.clock.time()
            log.error(
                "state lost: Redis no longer holds this deployment's data (restarted without "
                "persistence?). Watermarks restart from now; slots due while it was away are "
                "unknown and were not fired."
            )
            report = {"noticed_at": utc(now_s).isoformat(), "noticed_by": self.node_id}
            client.set(keys.state_lost, json.dumps(report), nx=True)
        self._epoch = epoch
