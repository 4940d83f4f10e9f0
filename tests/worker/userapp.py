"""A user's own Celery app, set up as the README says: `install(app)` right after creating it.

Real workers in test_worker_runonce.py run it (``celery -A tests.worker.userapp worker``).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

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
install(app, settings)

STALL_S = 300  # far longer than any test: the worker is killed while it "hangs" here


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
    started_ttl=timedelta(seconds=15),
)
def stall(self: Any, stall_on: str) -> str:
    """Hangs on workers whose name starts with `stall_on` (until they are killed)."""
    if str(self.request.hostname).startswith(stall_on):
        time.sleep(STALL_S)
    return f"done by {self.request.hostname.split('@')[0].split('.')[0]}"
