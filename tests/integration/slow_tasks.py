"""Test tasks for the integration tests of the policies: our worker's app
(`jobs.app.create_app`, hooks installed) plus a task that takes its time and logs its start
and end to Redis (`overlap = "skip"`), and an alert task that records what it was sent.

Run with ``celery -A tests.integration.slow_tasks worker``; the config comes from
``$SCHEDULER_CONFIG`` as for ``celery -A jobs worker``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from jobs.app import create_app
from jobs.scheduled import request_header
from jobs.settings import load_worker_settings
from scheduler.wire import HEADER_SLOT

settings = load_worker_settings()
app = create_app(settings)
ALERTS_KEY = "alerts-test:received"


@app.task(bind=True, name="tests.integration.slow_tasks.nap")  # type: ignore[untyped-decorator]
def nap(self: Any, seconds: float, log_key: str) -> str:
    """Sleeps `seconds`, with its start and end (slot, event, time) pushed onto `log_key`."""
    slot = request_header(self.request, HEADER_SLOT)
    state = redis.Redis.from_url(settings.redis_url, socket_timeout=5.0)
    try:
        state.rpush(log_key, json.dumps({"slot": slot, "event": "start", "at": time.time()}))
        time.sleep(seconds)
        state.rpush(log_key, json.dumps({"slot": slot, "event": "end", "at": time.time()}))
    finally:
        state.close()
    return f"napped {seconds}s"


@app.task(bind=True, name="tests.integration.slow_tasks.headers_seen")  # type: ignore[untyped-decorator]
def headers_seen(self: Any, name: str, log_key: str) -> None:
    """Pushes the value of the message header `name`, as the worker saw it, onto `log_key`."""
    state = redis.Redis.from_url(settings.redis_url, socket_timeout=5.0)
    try:
        state.rpush(log_key, json.dumps(request_header(self.request, name)))
    finally:
        state.close()


@app.task(name="tests.integration.slow_tasks.record_alert")  # type: ignore[untyped-decorator]
def record_alert(**kwargs: Any) -> None:
    """An alert task: pushes the kwargs it was sent (JSON, keys sorted) onto `ALERTS_KEY`."""
    state = redis.Redis.from_url(settings.redis_url, socket_timeout=5.0)
    try:
        state.rpush(ALERTS_KEY, json.dumps(kwargs, sort_keys=True))
    finally:
        state.close()
