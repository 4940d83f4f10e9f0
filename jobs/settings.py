"""What the worker side needs from the scheduler's config file, with defaults when it is absent."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from scheduler.config import default_config_path, load_config, settings_from_environment
from scheduler.queues import QueueDeclaration, queue_declarations

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    """The few config values a worker uses: where results, outcomes and messages live, and
    how much of the reports to keep."""

    redis_url: str
    broker_url: str
    namespace: str
    broker_transport_options: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None  # the config file read; None for built-in defaults
    message_key_file: str = ""  # set: refuse messages without the scheduler's signature
    # What the hooks keep of each job's reports: at most this many, none older than the TTL.
    history_max: int = 1000
    history_ttl: timedelta = timedelta(days=7)
    # Celery's result store: "" is the state Redis (redis_url), else a Celery backend URL such
    # as "db+sqlite:///var/lib/scheduler/results.db"; results are deleted after result_expires.
    result_backend: str = ""
    result_expires: timedelta = timedelta(days=1)
    # Queues the config's jobs route to or prioritise, declared by the worker as by the scheduler.
    queues: tuple[QueueDeclaration, ...] = ()


def load_worker_settings(path: str | os.PathLike[str] | None = None) -> WorkerSettings:
    """Read the worker's settings from the config file, or fall back to defaults if it is missing.

    The file is looked up like the scheduler does (``$SCHEDULER_CONFIG``, then
    ``/etc/scheduler/scheduler.toml``). A missing file is not fatal, so ``celery -A jobs worker``
    works on a laptop; an invalid one is (``ConfigError``): a worker quietly talking to the
    wrong Redis is worse than one that does not start.
    """
    target = Path(path) if path is not None else default_config_path()
    # Only a path that names nothing means "no config": anything else there (a FIFO, a
    # directory, a symlink loop) is for load_config to refuse with its one line.
    if not os.path.lexists(target):
        settings = default_settings()
        log.warning(
            "no scheduler config at %s: using built-in defaults (namespace %r); "
            "set SCHEDULER_CONFIG to the scheduler's config file",
            target,
            settings.namespace,
        )
        return settings
    config = load_config(target)
    return WorkerSettings(
        redis_url=config.scheduler.redis_url,
        broker_url=config.scheduler.effective_broker_url,
        namespace=config.scheduler.namespace,
        broker_transport_options=dict(config.scheduler.broker_transport_options),
        source=config.path,
        message_key_file=config.scheduler.message_key_file,
        history_max=config.scheduler.history_max,
        history_ttl=config.scheduler.history_ttl,
        result_backend=config.scheduler.result_backend,
        result_expires=config.scheduler.result_expires,
        queues=queue_declarations(config.jobs.values()),
    )


def default_settings() -> WorkerSettings:
    """The scheduler's defaults, honouring the ``SCHEDULER_*`` overrides a config file would
    (typed and validated the same way, password included)."""
    settings = settings_from_environment()
    return WorkerSettings(
        redis_url=settings.redis_url,
        broker_url=settings.effective_broker_url,
        namespace=settings.namespace,
        broker_transport_options=dict(settings.broker_transport_options),
        message_key_file=settings.message_key_file,
        history_max=settings.history_max,
        history_ttl=settings.history_ttl,
        result_backend=settings.result_backend,
        result_expires=settings.result_expires,
    )
