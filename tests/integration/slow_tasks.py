"""Tasks that take their time, for the integration tests of `overlap = "skip"`: our worker's
app (`jobs.app.create_app`, hooks installed) plus a task that logs its start and end to Redis.

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
