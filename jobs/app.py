"""The worker's Celery app, configured from the scheduler's own config file."""

from __future__ import annotations

from typing import Any

from celery import Celery

from jobs.hooks import install
from jobs.settings import WorkerSettings, load_worker_settings
from scheduler.connections import STATE_SCHEMES, kombu_broker, result_backend
from scheduler.queues import kombu_queue
from scheduler.zones import use_pinned_tzdata


def create_app(settings: WorkerSettings | None = None) -> Any:
    """A Celery app that consumes what the scheduler enqueues and reports each outcome."""
    # Our worker is a process of ours, so it reads the zones of the config as the nodes do.
    use_pinned_tzdata()
    settings = settings or load_worker_settings()
    # Celery reads neither our redis+sentinel:// URLs nor, for TLS, our default of verifying
    # certificates: both are spelled out in its own forms here.
    broker_url, transport_options = kombu_broker(
        settings.broker_url, dict(settings.broker_transport_options)
    )
    # Results go to the state Redis unless the config names another store (e.g. SQLite).
    backend_url = settings.result_backend or settings.redis_url
    redis_results = backend_url.split("://", 1)[0] in STATE_SCHEMES
    backend = result_backend(backend_url) if redis_results else None
    app = Celery(
        "jobs",
        broker=broker_url,
        backend=backend.url if backend is not None else backend_url,
        # The built-in shell and HTTP tasks run what their job says in the worker's own config.
        include=["jobs.examples", "jobs.builtin"],
    )
    app.conf.update(
        # The scheduler sends JSON only; never let a worker unpickle what it is given.
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        broker_transport_options=transport_options,
        # A job firing every second must not fill the result store: each result expires.
        result_expires=settings.result_expires,
        # Slots are UTC instants; keep Celery's own timestamps in UTC as well.
        enable_utc=True,
        timezone="UTC",
        # Keep Celery 5's startup reconnection behaviour without its deprecation warning.
        broker_connection_retry_on_startup=True,
    )
    if backend is not None:
        app.conf.result_backend_transport_options = backend.transport_options
        if backend.use_ssl:
            app.conf.redis_backend_use_ssl = backend.use_ssl
    for declaration in settings.queues:
        # Known to Celery, so `-Q name` declares it as the scheduler does; a worker started
        # without -Q still consumes only its default queue.
        app.amqp.queues.add(kombu_queue(declaration))
    install(app, settings)
    return app
