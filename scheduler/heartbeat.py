"""A node's heartbeat: its record in Redis, its clock against Redis TIME, and the state epoch.

Every second the node writes who it is (host, pid, version, config hash, tzdata, leader or
not) and measures its clock offset to Redis; above `max_clock_offset` it refuses leadership.
It also watches the state epoch, a random id written once per Redis dataset: when the epoch
vanishes, Redis lost its data (a restart without persistence), and the node says so. And it
reads Redis's `maxmemory-policy`: any policy but `noeviction` lets Redis evict the lease, the
watermarks or the outbox under memory pressure, so it is logged loudly and shown in `status`.

It publishes its config's job fingerprints (scheduler/store/configs.py), a chunk per beat, and
keeps their TTL fresh. A standby whose config hash differs from the leader's says so loudly,
naming the jobs that differ (from the leader's published fingerprints), once per pair of
configs and again every DRIFT_REPEAT_S while it lasts: were it to take over, it would run its
own config, not the leader's.

It speaks systemd's notify protocol (scheduler/sdnotify.py): `READY=1` after the first beat
that measured the clock and wrote this node's record (the node has joined), a `STATUS=` line
("leader, 42 jobs, next in 3 s", "standby behind n2", "Redis unreachable: ...") sent whenever
its text changes, and `WATCHDOG=1` only while the node's main loop turns (`loop_alive`): a
stuck loop is restarted by systemd instead of sitting on a healthy-looking process.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from scheduler import __version__, sdnotify
from scheduler.clock import Clock, utc
from scheduler.config import Config
from scheduler.connections import tzdata_version
from scheduler.drift import compare, fingerprints
from scheduler.errors import SchedulerError
from scheduler.lease import read_holder
from scheduler.store.configs import Publication, read_published
from scheduler.store.redis_time import clearly_off, offset_to_redis
from scheduler.store.state import StateStore

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0
# How often Redis's eviction policy is read again (an operator may change it at run time).
POLICY_CHECK_S = 60.0
SAFE_POLICY = "noeviction"
# Publishing a config's jobs takes at most this much of one beat (100,000 jobs: ~11 beats).
PUBLISH_STEP_S = 0.1
# How often the published config's TTL is renewed (and the publication checked still there).
PUBLISH_REFRESH_S = 300.0
# How often a standby compares its config with the leader's, and how often a drift that lasts
# is logged again.
DRIFT_CHECK_S = 5.0
DRIFT_REPEAT_S = 600.0
# A drift is logged without which jobs differ when the leader's jobs are not published by then.
DRIFT_DETAIL_WAIT_S = 30.0


class Heartbeat:
    def __init__(
        self,
        store: StateStore,
        node_id: str,
        clock: Clock,
        max_offset: timedelta,
        describe: Callable[[], dict[str, Any]],
        loop_alive: Callable[[], bool] = lambda: True,
        config: Callable[[], Config] | None = None,
    ) -> None:
        self.store = store
        self.node_id = node_id
        self.clock = clock
        self.limit_s = max_offset.total_seconds()
        self.describe = describe  # the node's live facts: leader, token, config hash...
        self.loop_alive = loop_alive
        self.offset_s = 0.0
        # Not before the clock was measured once: a skewed node must never lead, even briefly.
        self.clock_ok = False
        self._measured = False
        self.started_at = clock.time()
        self._host = socket.gethostname()
        self._epoch: bytes | None = None
        self._ready = False
        # True while the last beat wrote this node's record to Redis (/readyz reads it).
        self.joined = False
        # The STATUS= text last computed, and the one systemd last received.
        self.status: str | None = None
        self._status_sent: str | None = None
        # After STOPPING=1 nothing more goes to systemd: the lock makes "not stopped yet, so
        # send" one step against stopping().
        self._notify_lock = threading.Lock()
        self._stopped = False
        self._stop: threading.Event | None = None
        # None until read; "unknown" where CONFIG is not allowed (managed Redis, ACLs).
        self.memory_policy: str | None = None
        self._policy_read_at: float | None = None
        self.config = config  # the config file this node runs (not its runtime jobs)
        self._publication: Publication | None = None
        self._published_at: float | None = None
        self._drift_checked_at: float | None = None
        # (leader's hash, own hash) -> when first seen; and the pair last logged, and when.
        self._drift_seen: tuple[tuple[str, str], float] | None = None
        self._drift_logged: tuple[tuple[str, str], float] | None = None

    def run(self, stop: threading.Event) -> None:
        self._stop = stop
        while not stop.is_set():
            self.beat()
            stop.wait(HEARTBEAT_S)

    def beat(self) -> None:
        try:
            self._measure_clock()
            self._watch_epoch()
            self._read_memory_policy()
            record = self.record()
            holder = self._holder(record)
            self.store.heartbeat(self.node_id, record)
            self.joined = True
            if not self._ready:
                self._say(sdnotify.ready)  # before the first STATUS=: a status means "joined"
                self._ready = True
            self._tell(sdnotify.status_text(record, holder))
        except SchedulerError as exc:
            self.joined = False
            log.warning("heartbeat: %s", exc)
            self._tell(f"Redis unreachable: {exc}")
        except Exception:  # the heartbeat thread must outlive anything one beat meets
            self.joined = False
            log.exception("heartbeat: unexpected error; carrying on")
        else:
            self._config_beat()
        # The process is alive even when Redis is not: systemd must not restart a healthy
        # standby because Redis is down. But a main loop that stopped turning is not healthy.
        if self.loop_alive():
            self._say(sdnotify.watchdog)

    def stopping(self) -> None:
        """Send STOPPING=1, the last word to systemd: no beat sends anything after it."""
        with self._notify_lock:
            self._stopped = True
            sdnotify.stopping()

    def _say(self, send: Callable[[], bool]) -> bool:
        with self._notify_lock:
            if self._stopped or (self._stop is not None and self._stop.is_set()):
                return False
            return send()

    def _holder(self, record: dict[str, Any]) -> str | None:
        """Whom a standby stands behind (a leader knows); read before the record is written,
        so that a failure here leaves `joined` False rather than wrongly True."""
        if record.get("leader") or not self.clock_ok:
            return None
        holder = read_holder(self.store.client, self.store.keys)
        return holder.node_id if holder is not None else None

    def _tell(self, text: str) -> None:
        """STATUS= only when its text changed (a datagram a beat would be a D-Bus signal a
        second from systemd); a failed send is tried again on the next beat."""
        self.status = text
        if text != self._status_sent and self._say(lambda: sdnotify.status(text)):
            self._status_sent = text

    def distrust_clock(self) -> None:
        """A fenced step found the clock off Redis: refuse leadership until it measures well."""
        self.clock_ok = False

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
            "maxmemory_policy": self.memory_policy,
            **self.describe(),
        }

    def _config_beat(self) -> None:
        """Publish this node's config and compare it with the leader's; never in the way of
        the heartbeat itself."""
        if self.config is None:
            return
        try:
            config = self.config()
            self._publish(config)
            self._watch_drift(config)
        except SchedulerError as exc:
            log.warning("heartbeat: config publication or drift check: %s", exc)
        except Exception:
            log.exception("heartbeat: config publication or drift check failed; carrying on")

    def _publish(self, config: Config) -> None:
        now_s = self.clock.monotonic()
        current = self._publication
        if (
            current is None
            or current.config_hash != config.hash
            or (
                current.done
                and self._published_at is not None
                and now_s - self._published_at >= PUBLISH_REFRESH_S
            )
        ):
            current = self._publication = Publication(
                self.store.client, self.store.keys, config.hash, config.jobs
            )
        if not current.done and current.step(PUBLISH_STEP_S):
            self._published_at = now_s

    def _watch_drift(self, config: Config) -> None:
        now_s = self.clock.monotonic()
        if self._drift_checked_at is not None and now_s - self._drift_checked_at < DRIFT_CHECK_S:
            return
        self._drift_checked_at = now_s
        holder = read_holder(self.store.client, self.store.keys)
        leader_hash = None
        if holder is not None and holder.node_id != self.node_id:
            found = self.store.read_nodes().value.get(holder.node_id, {}).get("config_hash")
            leader_hash = found if isinstance(found, str) else None
        if holder is None or leader_hash is None or leader_hash == config.hash:
            if self._drift_logged is not None and leader_hash == config.hash:
                log.info("config drift over: this node runs the leader's config %s", config.hash)
            self._drift_seen = self._drift_logged = None
            return
        pair = (leader_hash, config.hash)
        if self._drift_seen is None or self._drift_seen[0] != pair:
            self._drift_seen = (pair, now_s)
        logged = self._drift_logged
        if logged is not None and logged[0] == pair and now_s - logged[1] < DRIFT_REPEAT_S:
            return
        published = read_published(self.store.client, self.store.keys, leader_hash)
        if published.jobs is None and now_s - self._drift_seen[1] < DRIFT_DETAIL_WAIT_S:
            return  # the leader may be publishing right now: wait a little for the details
        if published.jobs is None:
            which = f"which jobs differ is unknown (its jobs are {published.missing()})"
        else:
            drift = compare(published.jobs, fingerprints(config.jobs))
            which = drift.describe() or "no job differs (the configs differ elsewhere)"
        log.error(
            "config drift: this node runs config %s (%d jobs), the leader %s runs %s: %s; "
            "if this node takes over it will run its own config",
            config.hash,
            len(config.jobs),
            holder.node_id,
            leader_hash,
            which,
        )
        self._drift_logged = (pair, now_s)

    def _measure_clock(self) -> None:
        offset_s, round_trip_s = offset_to_redis(self.store.client, self.clock)
        ok = not clearly_off(offset_s, round_trip_s, self.limit_s)
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

    def _read_memory_policy(self) -> None:
        now_s = self.clock.monotonic()
        if self._policy_read_at is not None and now_s - self._policy_read_at < POLICY_CHECK_S:
            return
        self._policy_read_at = now_s
        found = self.store.memory_policy()
        if found != self.memory_policy:
            if found == "unknown":
                log.info(
                    "cannot read Redis maxmemory-policy (CONFIG not allowed); make sure "
                    "it is noeviction: another policy may evict the lease or watermarks"
                )
            elif found != SAFE_POLICY:
                log.error(
                    "Redis maxmemory-policy is %s, not noeviction: under memory pressure Redis "
                    "may evict the lease, watermarks or outbox (slots fired twice or lost); "
                    "set maxmemory-policy noeviction on this server",
                    found,
                )
            elif self.memory_policy is not None:
                log.info("Redis maxmemory-policy is noeviction again")
        self.memory_policy = found

    def _watch_epoch(self) -> None:
        epoch = self.store.epoch(secrets.token_hex(8))
        if self._epoch is not None and epoch != self._epoch:
            now_s = self.clock.time()
            log.error(
                "state lost: Redis no longer holds this deployment's data (restarted without "
                "persistence?). Watermarks restart from now; slots due while it was away are "
                "unknown and were not fired."
            )
            report = {"noticed_at": utc(now_s).isoformat(), "noticed_by": self.node_id}
            self.store.report_state_lost(report)
        self._epoch = epoch
