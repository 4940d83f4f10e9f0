"""Our worker's Celery app, built when this module is imported: ``celery -A jobs`` imports it.

Celery resolves ``-A jobs`` with `celery.app.utils.find_app` (5.7): the package has no `app`
or `celery` attribute that is an app (`jobs.app` is the module of `create_app`), so Celery
imports the submodule ``jobs.celery`` and takes its `app`. Keeping the app here, and not in
``jobs/__init__.py``, means a user's app that imports `jobs.hooks` or `jobs.runonce` does not
build and configure ours, nor read the scheduler's config file.
"""

from __future__ import annotations

from typing import Any

from jobs.app import create_app

app: Any = create_app()

__all__ = ["app"]
