"""A user's own Celery app, set up as the README says: `install(app)` right after creating it.

Real workers in test_worker_runonce.py run it (``celery -A tests.worker.userapp worker``).
``$USERAPP_BROKER_WRITE_URL``, when set, is where the app publishes (Celery's
``broker_write_url``), while it still consumes from the scheduler's broker: a test points it at
a closed port to make every send of the worker fail for real.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import Any

import redis
from celery import Celery

from jobs.hooks import install
from jobs.settings import load_worker_settings

settings = load_worker_settings()
app = Celery("userapp", broker=settings.broker_url, backend=settings.redis_url)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_accept_content=["json"],
    broker_transport_options=settings.broker_transport_options,
    broker_connection_retry_on_startup=True,
)
if os.environ.get("USERAPP_BROKER_WRITE_URL"):
    app.conf.broker_write_url = os.environ["USERAPP_BROKER_WRITE_URL"]
install(app, settings)

STALL_S = 300  # far longer than any test: the worker is killed while it "hangs" here
# The started claim of the tasks below: renewed every second while they run, so a task runs
# for many TTLs, and a killed worker's claim lapses within 3 s.
SHORT_TTL = timedelta(seconds=3)
LINGER_MAX_S = 90  # a gate never opened still ends the task (longer than any test)


@app.task(bind=True, name="tests.worker.userapp.flaky")
def flaky(self: Any, label: str) -> str:
    """Asks for one retry on its first attempt, then succeeds."""
    if self.request.retries == 0:
        raise self.retry(countdown=0, max_retries=1)
    return f"{label} after {self.request.retries} retry"


@app.task(
    bind=True,
    name="tests.worker.userapp.stall",
    acks_late=True,
    started_ttl=SHORT_TTL,
)
def stall(self: Any, stall_on: str) -> str:
    """Hangs on workers whose name starts with `stall_on` (until they are killed)."""
    if str(self.request.hostname).startswith(stall_on):
        time.sleep(STALL_S)
    return f"done by {self.request.hostname.split('@')[0].split('.')[0]}"


def _linger(gate: str) -> str:
    state = redis.Redis.from_url(settings.redis_url, socket_timeout=LINGER_MAX_S + 10)
    try:
        state.incr(f"{gate}:runs")  # one per execution of the body, whatever the claims say
        opened = state.blpop([gate], timeout=LINGER_MAX_S)
    finally:
        state.close()
    return "released" if opened else "never released"


@app.task(name="tests.worker.userapp.linger", started_ttl=SHORT_TTL)
def linger(gate: str) -> str:
    """Counts its run at ``<gate>:runs``, then runs until the test pushes onto the list `gate`:
    for as many started TTLs as the test likes."""
    return _linger(gate)


@app.task(name="tests.worker.userapp.linger_late", started_ttl=SHORT_TTL, acks_late=True)
def linger_late(gate: str) -> str:
    """`linger`, acked only after it ran (``acks_late``)."""
    return _linger(gate)
