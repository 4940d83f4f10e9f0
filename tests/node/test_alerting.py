"""AlertWatch against a real redis-server, with a ManualClock: what it writes (alerts hash and
history stream), what it logs, what it publishes (a real Celery message on the Redis broker),
and what garbage in Redis does to it. The lease is written by hand: the watch only needs its
value to be ours."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import redis

from scheduler.alerting import AlertWatch
from scheduler.config import Config, SchedulerSettings, load_config
from scheduler.connections import redis_client
from scheduler.messages import MessageFactory
from scheduler.store.alerts import read_alerts
from scheduler.store.claims import Claims
from scheduler.store.keys import Keys
from scheduler.store.reports import read_history
from scheduler.store.state import StateStore, Unreadable
from scheduler.webhook import Delivery, Notifier
from scheduler.wire import slot_text
from tests.clocks import ManualClock
from tests.conftest import RedisServer
from tests.integration.harness import wait_until, write_config

KEYS = Keys("it")
LEASE, TOKEN = "7 nonce n1", 7
T0 = 1_800_000_000.0


class Watched:
    """An AlertWatch on the private Redis, its clock, and what it left behind."""

    def __init__(self, config: Config, url: str, clock: ManualClock) -> None:
        self.config = config
        self.clock = clock
        self.redis = redis.Redis.from_url(url)
        self.redis.set(KEYS.lease, LEASE)
        self.factory = MessageFactory("it", url, {}, state_url=url)
        claims = Claims(redis_client(url), KEYS, clock=clock)
        self.watch = AlertWatch(
            claims, config.scheduler, self.factory.app, Notifier(first_backoff_s=0.05)
        )

    def check(self, after_s: float = 0.0) -> None:
        self.clock.advance(after_s)
        self.watch.check(LEASE, TOKEN, self.config.jobs)

    def history(self) -> list[dict[str, str]]:
        entries: Any = self.redis.xrange(KEYS.history)
        return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]

    def alerts(self) -> dict[str, Any]:
        raw: Any = self.redis.hgetall(KEYS.alerts)
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    def close(self) -> None:
        self.watch.close()
        self.factory.close()


WatchFactory = Callable[..., Watched]


@pytest.fixture
def watched(
    tmp_path: Path, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> Iterator[WatchFactory]:
    caplog.set_level(logging.INFO)
    made: list[Watched] = []

    def make(jobs: Mapping[str, Mapping[str, object]], **settings: object) -> Watched:
        path = write_config(tmp_path / "scheduler.toml", redis_url=redis_server.url, jobs=jobs,
                            extra_settings=settings)  # fmt: skip
        made.append(Watched(load_config(path), redis_server.url, ManualClock(T0)))
        return made[-1]

    yield make
    for one in made:
        one.close()


def job(**extra: object) -> dict[str, object]:
    return {"task": "jobs.examples.ping", "every": "10s", "queue": "parked", **extra}


def celery_message(raw: bytes) -> tuple[str, list[Any], dict[str, Any]]:
    """(task, args, kwargs) of a message on kombu's Redis transport; no scheduler headers."""
    message = json.loads(raw)
    assert not any(name.startswith("scheduler_") for name in message["headers"])
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    return message["headers"]["task"], args, kwargs


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def alert_entry(job: str, reason: str, slot: str = "") -> dict[str, str]:
    """A history entry of the switch; without a slot when the job never fired."""
    entry = {"job": job, "kind": "alert", "reason": reason, "slot": slot, "token": str(TOKEN)}
    if not slot:
        del entry["slot"]
    return entry


def test_no_alert_before_alert_after_then_one_per_episode_until_resolved(
    watched: WatchFactory, caplog: pytest.LogCaptureFixture
) -> None:
    one = watched({"backup": job(alert_after="1m"), "quiet": job()})
    one.check()  # first sight: silence counts from now
    one.check(55)
    assert one.alerts() == {}
    one.check(5)
    assert one.alerts() == {"backup": {"since": T0 + 60, "reason": "no_success"}}
    assert one.history() == [alert_entry("backup", "no_success")]
    assert warnings(caplog) == [
        "ALERT backup: no success within alert_after 1m (last fired slot never, last success never)"
    ]
    for _ in range(10):
        one.check(5)
    assert len(one.history()) == 1
    assert len(warnings(caplog)) == 1

    one.redis.hset(KEYS.last_success, "backup", str(T0 + 113))
    one.check(5)
    assert one.alerts() == {}
    assert one.history()[1:] == [alert_entry("backup", "resolved")]
    read = read_history(one.redis, KEYS)  # as `history` reads them, newest first
    assert read.unreadable == []
    assert [(e.job, e.kind, e.reason, e.slot_s) for e in read.value] == [
        ("backup", "alert", "resolved", None), ("backup", "alert", "no_success", None)
    ]  # fmt: skip
    one.check(55)
    assert one.alerts() == {}
    one.check(5)  # over 60 s after that success: a new episode
    assert one.alerts() == {"backup": {"since": T0 + 175, "reason": "no_success"}}


def test_an_enqueued_slot_never_started_names_the_slot(watched: WatchFactory) -> None:
    one = watched({"backup": job(alert_after="30s")})
    slot_s = int(T0) - 5
    one.redis.hset(KEYS.last_fire, "backup", f"{slot_s} 3")  # fired before this leader came
    one.check()
    one.check(20)
    assert one.alerts() == {}
    one.check(5)  # 30 s after the slot, 25 s after this leader first saw the job
    assert one.alerts() == {"backup": {"since": T0 + 25, "reason": "not_started"}}
    assert one.history() == [alert_entry("backup", "not_started", str(slot_s))]


def test_checks_are_throttled_to_one_every_five_seconds(watched: WatchFactory) -> None:
    one = watched({"backup": job(alert_after="1s")})
    one.check()
    one.check(4.9)  # due, but within 5 s of the last check
    assert one.alerts() == {}
    one.check(0.1)
    assert list(one.alerts()) == ["backup"]


def test_a_new_leadership_counts_silence_afresh(watched: WatchFactory) -> None:
    one = watched({"backup": job(alert_after="1m")})
    one.check()
    for after_s, token in ((50, TOKEN + 1), (55, TOKEN + 1), (5, TOKEN + 1)):
        one.clock.advance(after_s)  # taken over with a new token, 50 s after the first sight
        one.watch.check(LEASE, token, one.config.jobs)
        if after_s == 55:
            assert one.alerts() == {}
    assert one.alerts() == {"backup": {"since": T0 + 110, "reason": "no_success"}}


def test_a_lease_that_is_not_ours_writes_nothing(
    watched: WatchFactory, caplog: pytest.LogCaptureFixture
) -> None:
    one = watched({"backup": job(alert_after="1s")})
    one.check()
    one.redis.set(KEYS.lease, "8 other n2")
    one.check(5)
    assert one.alerts() == {}
    assert one.history() == []
    assert warnings(caplog) == []


def test_the_alert_task_is_published_to_the_default_queue(watched: WatchFactory) -> None:
    one = watched({"backup": job(alert_after="1m"), "other": job(alert_after="1m",
                  alert_task="ops.page")}, alert_task="ops.notify")  # fmt: skip
    one.redis.hset(KEYS.last_success, "other", str(T0 - 3600))
    one.check()
    one.check(60)
    raw: Any = wait_until(
        lambda: one.redis.lrange("celery", 0, -1) if one.redis.llen("celery") == 2 else None,
        timeout_s=10, what="two alert tasks on the celery queue",
    )  # fmt: skip
    sent = sorted(celery_message(item) for item in raw)
    assert sent == [
        ("ops.notify", [], {"job": "backup", "reason": "no_success", "since": T0 + 60,
                            "last_success": None}),
        ("ops.page", [], {"job": "other", "reason": "no_success", "since": T0,
                          "last_success": T0 - 3600}),
    ]  # fmt: skip


def test_garbage_where_alerts_live_is_set_aside_or_overwritten(
    watched: WatchFactory, caplog: pytest.LogCaptureFixture
) -> None:
    one = watched({"backup": job(alert_after="1s"), "sync": job(alert_after="1s")})
    one.redis.set(KEYS.history, "not a stream")
    one.check()
    one.check(5)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith("key it:history held a string, not what alerts need: moved to ")
    one.check(5)
    assert sorted(one.alerts()) == ["backup", "sync"]

    one.redis.delete(KEYS.alerts)
    one.redis.hset(KEYS.alerts, "backup", b"\xff garbage")
    one.redis.hset(KEYS.outcomes, "backup", b"[")
    one.check(5)
    assert one.alerts()["backup"] == {"since": T0 + 15, "reason": "no_success"}


def test_a_reports_key_of_the_wrong_type_is_ignored_with_one_warning(
    watched: WatchFactory, caplog: pytest.LogCaptureFixture
) -> None:
    one = watched({"backup": job(alert_after="10s")})
    one.redis.set(KEYS.outcomes, "not a hash")
    for _ in range(4):
        one.check(5)
    problems = [m for m in warnings(caplog) if "cannot be read" in m]
    assert len(problems) == 1
    assert problems[0].startswith("dead man's switch: it:outcomes cannot be read (WRONGTYPE")
    assert list(one.alerts()) == ["backup"]


def test_read_alerts_reads_garbage_as_unreadable(redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.hset(KEYS.alerts, mapping={"a": json.dumps({"since": T0, "reason": "no_success"}),
                                      "b": "{not json", "c": json.dumps({"since": "x"})})  # fmt: skip
    reading = read_alerts(client, KEYS)
    assert reading.value == {
        "a": {"since": T0, "reason": "no_success"},
        "b": {"since": None, "reason": "unreadable"},
        "c": {"since": None, "reason": "unreadable"},
    }
    assert sorted(u.field or "" for u in reading.unreadable) == ["b", "c"]
    only = read_alerts(StateStore(client, KEYS), KEYS, ["a", "zz"])
    assert (only.value, only.unreadable) == ({"a": {"since": T0, "reason": "no_success"}}, [])
    client.delete(KEYS.alerts)
    client.set(KEYS.alerts, "x")
    wrong = read_alerts(client, KEYS)
    assert wrong.value == {}
    assert wrong.unreadable == [Unreadable("it:alerts", "a string, not a hash")]


def test_history_entries_use_slot_seconds_like_the_claim(watched: WatchFactory) -> None:
    one = watched({"backup": job(alert_after="1s")})
    one.redis.hset(KEYS.last_fire, "backup", f"{int(T0)} 7")
    one.check(1)
    [entry] = one.history()
    assert entry["slot"] == str(int(T0))
    assert slot_text(int(entry["slot"])) == "2027-01-15T08:00:00Z"
    [read] = read_history(one.redis, KEYS).value
    assert (read.kind, read.reason, read.slot_s) == ("alert", "not_started", int(T0))


# -- the notifier thread: bounded, retrying, never waited for ---------------------------------


def test_a_full_notifier_drops_with_one_error_and_never_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    notifier = Notifier(capacity=1)
    busy, release = threading.Event(), threading.Event()

    def stuck() -> None:
        busy.set()
        release.wait(timeout=10)

    try:
        assert notifier.submit(Delivery("first", stuck))
        assert busy.wait(timeout=5)  # the thread holds the first; the queue is empty
        assert notifier.submit(Delivery("second", lambda: None))
        began = time.monotonic()
        assert not notifier.submit(Delivery("third", lambda: None))
        assert time.monotonic() - began < 0.1
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
            "dropped third: 1 notifications are still waiting to be sent"
        ]
    finally:
        release.set()
        notifier.close()


def test_a_failing_delivery_is_retried_with_backoff_then_given_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    notifier = Notifier(attempts=3, first_backoff_s=0.01)
    tries: list[int] = []
    done = threading.Event()

    def flaky() -> None:
        tries.append(1)
        if len(tries) < 3:
            raise ConnectionError("refused")
        done.set()

    def broken() -> None:
        raise ConnectionError("refused")

    try:
        notifier.submit(Delivery("flaky", flaky))
        assert done.wait(timeout=5)
        notifier.submit(Delivery("broken", broken))
        wait_until(lambda: any("gave up" in r.getMessage() for r in caplog.records),
                   timeout_s=5, what="the notifier to give up")  # fmt: skip
    finally:
        notifier.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "scheduler.webhook"]
    assert lines == [
        "sending flaky failed (try 1 of 3), again in 0.01s: refused",
        "sending flaky failed (try 2 of 3), again in 0.02s: refused",
        "sent flaky",
        "sending broken failed (try 1 of 3), again in 0.01s: refused",
        "sending broken failed (try 2 of 3), again in 0.02s: refused",
        "gave up sending broken after 3 tries: refused",
    ]


def test_constructing_a_watch_or_notifier_starts_no_thread(redis_server: RedisServer) -> None:
    before = threading.active_count()
    watch = AlertWatch(Claims(redis_client(redis_server.url), KEYS), SchedulerSettings())
    assert threading.active_count() == before
    watch.close()


def test_the_leader_loop_raises_the_alert_of_a_job_nobody_runs(rig_factory: Any) -> None:
    """Wired into the node: no worker runs job a, so after alert_after (and the watch's
    5 s throttle) the leader records one alert and sends the alert task, and only once."""
    job = {"task": "jobs.examples.ping", "every": "1s", "queue": "parked", "alert_after": "4s",
           "alert_task": "jobs.examples.notify"}  # fmt: skip
    rig = rig_factory({"a": job}, max_clock_offset="60s")
    rig.lead()
    for _ in range(16):
        rig.tick()
    alerts = rig.redis.hgetall(f"{rig.node.keys.namespace}:alerts")
    assert list(alerts) == [b"a"]
    assert json.loads(alerts[b"a"])["reason"] in ("no_success", "not_started")
    # The notifier sends on its own thread: wait (bounded) for the message to land.
    raw = rig.redis.blmove("celery", "celery-seen", timeout=10)
    assert raw is not None, "no alert task reached the broker"
    message = json.loads(raw)
    assert message["headers"]["task"] == "jobs.examples.notify"
    assert json.loads(base64.b64decode(message["body"]))[1]["job"] == "a"
    for _ in range(6):  # the alert stays open: nothing more is sent
        rig.tick()
    assert rig.redis.llen("celery") == 0
