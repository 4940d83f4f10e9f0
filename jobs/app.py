"""The worker's Celery app, configured from the scheduler's own config file."""

from __future__ import annotations

from typing import Any

from celery import Celery

from jobs.hooks import install
from jobs.settings import WorkerSettings, load_worker_settings
from scheduler.zones import use_pinned_tzdata


def create_app(settings: WorkerSettings | None = None) -> Any:
    """A Celery app that consumes what the scheduler enqueues and reports each outcome."""
    # Our worker is a process of ours, so it reads the zones of the config as the nodes do.
    use_pinned_tzdata()
    settings = settings or load_worker_settings()
    app = Celery(
        "jobs",
        broker=settings.broker_url,
        # Results go to the state Redis, so operators and tests find them next to the outcomes.
        backend=settings.redis_url,
        include=["jobs.examples"],
    )
    app.conf.update(
        # The scheduler sends JSON only; never let a worker unpickle what it is given.
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        broker_transport_options=settings.broker_transport_options,
        # Slots are UTC instants; keep Celery's own timestamps in UTC as well.
        enable_utc=True,
        timezone="UTC",
        # Keep Celery 5's startup reconnection behaviour without its deprecation warning.
        broker_connection_retry_on_startup=True,
    )
    install(app, settings)
    return app
