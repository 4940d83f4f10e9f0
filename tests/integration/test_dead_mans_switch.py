"""The dead man's switch end to end: AlertWatch on a real Redis with the real clock, a local
HTTP server (http.server in a thread) as the webhook, and a real Celery worker that runs the
alert task and the job itself. The test holds the lease (written by hand) and plays the
leader's part of sending the job's fire; the worker's hooks report its success."""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from scheduler.alerting import AlertWatch
from scheduler.config import load_config
from scheduler.connections import redis_client
from scheduler.messages import MessageFactory
from scheduler.store.alerts import read_alerts
from scheduler.store.claims import Claims
from scheduler.store.keys import Keys
from scheduler.webhook import Notifier
from tests.integration.harness import Cluster, wait_until

NS = "dms"
KEYS = Keys(NS)
LEASE, TOKEN = "9 nonce test", 9
ALERTS_KEY = "alerts-test:received"  # where tests.integration.slow_tasks.record_alert writes


@dataclass
class Webhook:
    """A local HTTP server: each POST's path and JSON body; answers with `statuses` in turn
    (then 200); `hold` keeps a request waiting until it is set."""

    url: str
    received: queue.Queue[tuple[str, Any]] = field(default_factory=queue.Queue)
    statuses: list[int] = field(default_factory=list)
    hold: threading.Event | None = None

    def next(self, timeout_s: float = 10.0) -> tuple[str, Any]:
        return self.received.get(timeout=timeout_s)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if hook.hold is not None:
                hook.hold.wait(timeout=30)
            status = hook.statuses.pop(0) if hook.statuses else 200
            hook.received.put((self.path, json.loads(body)))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads what arrived."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/dms-secret"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        if hook.hold is not None:
            hook.hold.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class Leader:
    """The test's stand-in for the leader: the lease, an AlertWatch, and the job's fires."""

    def __init__(self, config_path: Path, redis_url: str) -> None:
        self.config = load_config(config_path)
        self.redis = redis_client(redis_url)
        self.redis.set(KEYS.lease, LEASE)
        self.factory = MessageFactory(NS, redis_url, {}, state_url=redis_url)
        self.watch = AlertWatch(
            Claims(redis_client(redis_url), KEYS), self.config.scheduler, self.factory.app,
            Notifier(first_backoff_s=0.2), interval_s=0.5,
        )  # fmt: skip

    def watch_until(self, what: str, condition: Any, timeout_s: float = 10.0) -> Any:
        def checked() -> Any:
            self.watch.check(LEASE, TOKEN, self.config.jobs)
            return condition()

        return wait_until(checked, timeout_s=timeout_s, what=what, interval_s=0.1)

    def fire(self, job: str) -> None:
        push = self.factory.redis_push(self.config.jobs[job], int(time.time()), TOKEN)
        self.redis.lpush(push.key, push.payload)

    def alerts(self) -> dict[str, Any]:
        return read_alerts(self.redis, KEYS).value

    def alert_history(self) -> list[dict[str, str]]:
        entries: Any = self.redis.xrange(KEYS.history)
        return [
            {k.decode(): v.decode() for k, v in fields.items()}
            for _, fields in entries
            if fields.get(b"kind") == b"alert"
        ]

    def close(self) -> None:
        self.watch.close()
        self.factory.close()


def test_a_silent_job_posts_the_webhook_runs_the_alert_task_and_resolves_on_success(
    cluster: Cluster, webhook: Webhook
) -> None:
    backup = {"task": "jobs.examples.ping", "every": "1h", "queue": "work", "alert_after": "2s",
              "alert_webhook": webhook.url,
              "alert_task": "tests.integration.slow_tasks.record_alert"}  # fmt: skip
    path = cluster.configure(namespace=NS, jobs={"backup": backup})
    command = [
        sys.executable, "-m", "celery", "-A", "tests.integration.slow_tasks", "worker",
        "--pool=solo", "--without-mingle", "--without-gossip", "--without-heartbeat",
        "-Q", "work,celery", "-n", f"dms.{uuid.uuid4().hex[:8]}@%h", "--loglevel=INFO",
    ]  # fmt: skip
    worker = cluster.children.start("worker", command, cluster.env)
    leader = Leader(path, cluster.redis_url)
    try:
        cluster.wait_worker_ready(worker)
        first_seen = time.time()
        alerts = leader.watch_until("the alert", lambda: leader.alerts() or None)
        assert alerts["backup"]["reason"] == "no_success"
        since = alerts["backup"]["since"]
        assert first_seen + 2 <= since < first_seen + 4

        path_seen, body = webhook.next()
        assert path_seen == "/hooks/dms-secret"
        assert body == {"job": "backup", "reason": "no_success", "since": since,
                        "last_success": None, "namespace": NS}  # fmt: skip
        state = cluster.state()
        sent = cluster.wait_until(
            lambda: state.lrange(ALERTS_KEY, 0, -1) or None, timeout_s=10,
            what="the alert task to run on the worker",
        )  # fmt: skip
        assert [json.loads(raw) for raw in sent] == [
            {"job": "backup", "last_success": None, "reason": "no_success", "since": since}
        ]

        for _ in range(5):  # open: nothing new
            leader.watch.check(LEASE, TOKEN, leader.config.jobs)
        leader.fire("backup")  # the worker runs it; its hooks report the success
        leader.watch_until("the alert to resolve", lambda: not leader.alerts())
        assert [(e["job"], e["reason"]) for e in leader.alert_history()] == [
            ("backup", "no_success"), ("backup", "resolved")
        ]  # fmt: skip
        assert webhook.received.empty()
        assert state.llen(ALERTS_KEY) == 1
    finally:
        leader.close()


def test_a_failing_webhook_is_retried_and_a_hanging_one_holds_nothing_up(
    cluster: Cluster, webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = {name: {"task": "jobs.examples.ping", "every": "1h", "alert_after": "1s"}
            for name in ("a", "b")}  # fmt: skip
    path = cluster.configure(namespace=NS, jobs=jobs, extra_settings={"alert_webhook": webhook.url})
    leader = Leader(path, cluster.redis_url)
    try:
        state = cluster.state()
        success = round(time.time() - 60, 3)
        state.hset(KEYS.last_success, "a", f"{success:.3f}")
        webhook.statuses = [500]
        leader.watch_until("a's alert", lambda: "a" in leader.alerts())
        assert webhook.next() == (
            "/hooks/dms-secret",
            {
                "job": "a",
                "reason": "no_success",
                "since": leader.alerts()["a"]["since"],
                "last_success": success,
                "namespace": NS,
            },
        )  # the 500; the retry follows
        assert webhook.next()[1]["job"] == "a"
        failures = [r.getMessage() for r in caplog.records if "failed (try" in r.getMessage()]
        assert len(failures) == 1
        assert failures[0].startswith(
            f"sending alert webhook http://127.0.0.1:{webhook.url.split(':')[2].split('/')[0]}"
            "/... for a failed (try 1 of 4), again in 0.2s: answered 500 Internal Server Error"
        )
        assert "dms-secret" not in caplog.text

        webhook.hold = threading.Event()  # b's POST hangs in the server
        started = time.monotonic()
        leader.watch_until("b's alert", lambda: "b" in leader.alerts())
        assert time.monotonic() - started < 3.0
        for _ in range(3):
            began = time.monotonic()
            leader.watch.check(LEASE, TOKEN, leader.config.jobs)
            assert time.monotonic() - began < 0.5
        webhook.hold.set()
        assert webhook.next()[1]["job"] == "b"
    finally:
        leader.close()
