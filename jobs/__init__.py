"""Worker side of `scheduler`: run it with ``celery -A jobs worker``.

That app lives in `jobs.celery` and is configured from the scheduler's config file
(``$SCHEDULER_CONFIG``, then ``/etc/scheduler/scheduler.toml``) when Celery imports it;
importing this package builds no app. Users' own Celery apps call `jobs.hooks.install(app)`, or
give their tasks ``base=RunOnceTask``, to run each fired (job, slot) once.
"""

from __future__ import annotations

from jobs.app import create_app
from jobs.hooks import install
from jobs.runonce import RunOnceTask

__all__ = ["RunOnceTask", "create_app", "install"]
