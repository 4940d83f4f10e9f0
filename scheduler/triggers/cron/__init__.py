"""Cron: the one place that knows what a cron expression means.

Extensions beyond cronie (``L``, ``nL``, ``n#k``, ``nW``, ``H``) are documented in
``fields.py`` and ``hashed.py``.
"""

from scheduler.triggers.cron.expression import CronExpression, compile_cron
from scheduler.triggers.cron.trigger import CronTrigger

__all__ = ["CronExpression", "CronTrigger", "compile_cron"]
