"""The dead man's switch in the leader: every few seconds, read what the workers reported of the
jobs with `alert_after`, decide (scheduler/alerts.py), and open or close their alerts.

An alert is opened (and closed) by one fenced script that also records it in the history
stream, so only the lease holder writes one and each episode is raised once. A new alert is
logged as one WARNING line and, if configured, handed to the notifier thread (webhook.py): a
Celery message for the job's `alert_task` (or [scheduler] alert_task), published by Celery's
own `send_task` to the default queue, and/or a JSON POST to its `alert_webhook`. Nothing
here raises into the leader loop, and nothing here waits for a receiver.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import redis

from scheduler.alerts import (
    JobFacts,
    Raise,
    alert_value,
    decide,
    notification,
    parse_alert,
    parse_epoch,
    parse_last_fire,
    parse_outcome,
)
from scheduler.config import SchedulerSettings
from scheduler.durations import format_duration
from scheduler.errors import LeaseLost, SchedulerError, StateCorrupt
from scheduler.jobspec import JobSpec
from scheduler.store.claims import STREAM_CAP, Claims
from scheduler.store.failures import redis_errors
from scheduler.store.scripts import register
from scheduler.store.state import MAX_ENTRIES, text
from scheduler.webhook import Delivery, Notifier, post_json, shown_url
from scheduler.wire import slot_text

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 5.0
_CHUNK = 1000


class AlertWatch:
    """Checks the leader's jobs for the dead man's switch at most every `interval_s`."""

    def __init__(
        self,
        claims: Claims,
        settings: SchedulerSettings,
        celery_app: Any = None,
        notifier: Notifier | None = None,
        interval_s: float = CHECK_INTERVAL_S,
    ) -> None:
        """`claims` gives the Redis client, keys and clock; `celery_app` (the MessageFactory's
        app) publishes alert tasks; without one, alert tasks are not sent."""
        self.claims = claims
        self.client: redis.Redis = claims.client
        self.keys = claims.keys
        self.clock = claims.clock
        self.settings = settings
        self.celery_app = celery_app
        self.notifier = notifier or Notifier()
        self.interval_s = interval_s
        self._script = register(self.client, "alert")
        self._next_check_s: float | None = None
        self._token: int | None = None
        self._first_seen: dict[str, float] = {}
        self._paused_seen: dict[str, float] = {}
        # Problems logged in the last check: one stays quiet while it lasts.
        self._complained: set[str] = set()
        self._complaints: set[str] = set()
        self._watched_of: Mapping[str, JobSpec] | None = None
        self._watched_names: list[str] = []

    def check(self, lease_value: str, token: int, jobs: Mapping[str, JobSpec]) -> None:
        """Check now if `interval_s` went by since the last check; never raises."""
        now_mono = self.clock.monotonic()
        if self._next_check_s is not None and now_mono < self._next_check_s:
            return
        self._next_check_s = now_mono + self.interval_s
        self._complaints = set()
        try:
            self.check_now(lease_value, token, jobs)
        except LeaseLost:
            log.debug("dead man's switch: the lease is no longer ours")
        except SchedulerError as exc:
            self._complain(f"dead man's switch not checked: {exc}")
        except Exception:  # no surprise here may stop the leader loop
            log.exception("dead man's switch: unexpected error; checking again later")
        self._complained = self._complaints

    def close(self) -> None:
        self.notifier.close()

    def check_now(self, lease_value: str, token: int, jobs: Mapping[str, JobSpec]) -> None:
        """One check of every job (raises the store's errors, LeaseLost when not leading)."""
        if token != self._token:  # a new leadership counts silence afresh
            self._token, self._first_seen, self._paused_seen = token, {}, {}
        now_s = self.clock.time()
        watched = self._watched(jobs)
        raw_alerts = self._open_alerts(watched)
        # Open alerts of jobs that no longer set alert_after are closed ("cleared").
        others = [name for raw in raw_alerts if (name := text(raw)) in jobs and name not in watched]
        names = [*watched, *others]
        if not names:
            return
        facts = self._facts(names)
        for name in names:
            job, found = jobs[name], facts[name]
            first_seen_s = self._first_seen.setdefault(name, now_s)
            if found.paused:
                self._paused_seen[name] = now_s
            raw = raw_alerts.get(name.encode(), b"")
            current = parse_alert(raw) if raw else None
            change = decide(
                None if job.alert_after is None else job.alert_after.total_seconds(),
                found,
                current,
                first_seen_s=first_seen_s,
                paused_seen_s=self._paused_seen.get(name),
                now_s=now_s,
            )
            if isinstance(change, Raise):
                value = alert_value(change.since_s, change.reason)
                if self._write(lease_value, token, name, raw, value, change.reason, found):
                    self._raised(job, change, found)
            elif change is not None and self._write(
                lease_value, token, name, raw, "", change.reason, found
            ):
                log.info("alert of %s closed: %s", name, change.reason)

    # -- Redis --------------------------------------------------------------------------------

    def _watched(self, jobs: Mapping[str, JobSpec]) -> list[str]:
        """The jobs with an `alert_after`, worked out again only when the jobs change: the
        loop must not walk 100,000 jobs every few seconds to find none."""
        if jobs is not self._watched_of:
            self._watched_of = jobs
            self._watched_names = [n for n, j in jobs.items() if j.alert_after is not None]
        return self._watched_names

    def _open_alerts(self, watched: Sequence[str]) -> dict[bytes, bytes]:
        """Open alerts: all of them (few), or, if the hash grew huge, those of `watched`."""
        key = self.keys.alerts
        try:
            with redis_errors("reading open alerts"):
                if int(self.client.hlen(key)) <= MAX_ENTRIES:
                    return self.client.hgetall(key)  # type: ignore[return-value]
                found: dict[bytes, bytes] = {}
                for start in range(0, len(watched), _CHUNK):
                    names = list(watched[start : start + _CHUNK])
                    values: list[bytes | None] = self.client.hmget(key, names)  # type: ignore[assignment]
                    found.update(
                        (n.encode(), v) for n, v in zip(names, values, strict=True) if v is not None
                    )
                return found
        except StateCorrupt:  # a wrong type: the fenced write sets the key aside
            return {}

    def _facts(self, names: Sequence[str]) -> dict[str, JobFacts]:
        """Each job's facts; a key of the wrong type reads as saying nothing (logged)."""
        keys = self.keys
        facts: dict[str, JobFacts] = {}
        for start in range(0, len(names), _CHUNK):
            chunk = list(names[start : start + _CHUNK])
            with redis_errors("reading what workers reported"):
                pipe = self.client.pipeline(transaction=False)
                pipe.hmget(keys.last_success, chunk)
                pipe.hmget(keys.last_fire, chunk)
                pipe.hmget(keys.outcomes, chunk)
                pipe.smismember(keys.paused, chunk)
                replies = pipe.execute(raise_on_error=False)
            wanted = (keys.last_success, keys.last_fire, keys.outcomes, keys.paused)
            columns = [
                self._column(key, reply, len(chunk))
                for key, reply in zip(wanted, replies, strict=True)
            ]
            for index, name in enumerate(chunk):
                success, fired, outcome, paused = (column[index] for column in columns)
                slot_s, event = parse_outcome(outcome)
                facts[name] = JobFacts(
                    parse_epoch(success), parse_last_fire(fired), slot_s, event, bool(paused)
                )
        return facts

    def _column(self, key: str, reply: Any, size: int) -> list[Any]:
        if isinstance(reply, redis.ResponseError):
            self._complain(f"dead man's switch: {key} cannot be read ({reply}); ignoring it")
            return [None] * size
        return list(reply)

    def _write(
        self, lease_value: str, token: int, job: str, seen: bytes, value: str, reason: str,
        facts: JobFacts,
    ) -> bool:  # fmt: skip
        """Open (`value`) or close ('') the alert of `job` if it is still `seen`; whether done."""
        keys = [self.keys.lease, self.keys.alerts, self.keys.history]
        slot = "" if facts.last_fire_s is None else str(facts.last_fire_s)
        args: list[str | bytes | int] = [
            lease_value, job, seen, value, reason, slot, token, STREAM_CAP
        ]  # fmt: skip
        with redis_errors("recording an alert"):
            reply = self._script(keys=keys, args=args)
        status = int(reply[0])
        if status == 0:
            raise LeaseLost("lease lost: recording an alert refused by the fencing check")
        if status == 2:
            key, found = (part.decode(errors="replace") for part in reply[1:3])
            target = self.claims.set_aside(lease_value, key, found)
            log.error("key %s held a %s, not what alerts need: moved to %s", key, found, target)
            return False
        return bool(int(reply[1]))

    # -- telling people -------------------------------------------------------------------------

    def _raised(self, job: JobSpec, alert: Raise, facts: JobFacts) -> None:
        assert job.alert_after is not None
        success = "never" if facts.last_success_s is None else slot_text(int(facts.last_success_s))
        fired = "never" if facts.last_fire_s is None else slot_text(facts.last_fire_s)
        what = "enqueued slot never started" if alert.reason == "not_started" else "no success"
        log.warning(
            "ALERT %s: %s within alert_after %s (last fired slot %s, last success %s)",
            job.name,
            what,
            format_duration(job.alert_after),
            fired,
            success,
        )
        kwargs = notification(job.name, alert.reason, alert.since_s, facts.last_success_s)
        task = job.alert_task or self.settings.alert_task
        if task and self.celery_app is not None:
            app = self.celery_app
            self.notifier.submit(
                Delivery(
                    f"alert task {task} for {job.name}",
                    lambda: app.send_task(task, kwargs=kwargs),
                )
            )
        hook = job.alert_webhook or self.settings.alert_webhook
        if hook:
            body = {**kwargs, "namespace": self.keys.namespace}
            self.notifier.submit(
                Delivery(f"alert webhook {shown_url(hook)} for {job.name}",
                         lambda: post_json(hook, body))
            )  # fmt: skip

    def _complain(self, message: str) -> None:
        """Log a problem once while it lasts, not every few seconds."""
        if message not in self._complained:
            log.warning("%s", message)
        self._complaints.add(message)
