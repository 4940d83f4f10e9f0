"""The Celery app the peers run: ``celery -A beatapp beat`` (celery beat or RedBeat) and the
stock worker that consumes one burst. It runs from the peers' venv, never from ours.

Everything comes from the environment the bench sets: the private Redis (broker, RedBeat's
store), and a JSON file with the ``beat_schedule`` entries the driver wrote.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import timedelta
from typing import Any

import redis
from celery import Celery
from celery.schedules import crontab
from celery.signals import beat_init

BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6399/0")
DONE_KEY = "bench:done"  # the worker counts what it ran here, and the task ids it saw

app = Celery("bench", broker=BROKER_URL, set_as_current=True)
app.conf.update(
    timezone="UTC",
    enable_utc=True,
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    redbeat_redis_url=BROKER_URL,
)
if os.environ.get("BENCH_MAX_INTERVAL_S"):
    app.conf.beat_max_loop_interval = float(os.environ["BENCH_MAX_INTERVAL_S"])
if os.environ.get("BENCH_REDBEAT_LOCK_TIMEOUT_S"):
    app.conf.redbeat_lock_timeout = int(os.environ["BENCH_REDBEAT_LOCK_TIMEOUT_S"])


def _entry(item: dict[str, Any]) -> dict[str, Any]:
    if "crontab" in item:
        schedule: Any = crontab(**item["crontab"])
    else:
        schedule = timedelta(seconds=item["every_s"])
    return {"task": item["task"], "schedule": schedule, "options": {"queue": item["queue"]}}


if os.environ.get("BENCH_SCHEDULE"):
    with open(os.environ["BENCH_SCHEDULE"], encoding="utf-8") as handle:
        app.conf.beat_schedule = {item["name"]: _entry(item) for item in json.load(handle)}


@beat_init.connect
def _ready(sender: Any = None, **_: Any) -> None:
    """The schedule is set up and the loop is about to tick: say so in the log."""
    logging.getLogger("bench").warning("bench: beat ready")


_client: redis.Redis | None = None


@app.task(name="bench.noop", bind=True)
def noop(self: Any, *args: Any, **kwargs: Any) -> None:
    """Counts itself, so the bench can tell that a stock worker ran every message."""
    global _client  # noqa: PLW0603 (one client per worker process)
    if _client is None:
        _client = redis.Redis.from_url(BROKER_URL)
    with _client.pipeline() as pipe:
        pipe.incr(DONE_KEY)
        pipe.sadd(f"{DONE_KEY}:ids", self.request.id)
        pipe.execute()
