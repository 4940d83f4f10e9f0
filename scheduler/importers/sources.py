"""Next-slot functions for the schedules an import compares: ours, croniter's, celery's.

Each answers "the first slot strictly after this aware instant" as an aware datetime (or
None), the shape ``compare.first_difference`` walks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from scheduler.importers.compare import NextSlot
from scheduler.triggers import CronTrigger, compile_cron


def ours(cron: str, zone: ZoneInfo, job_name: str) -> NextSlot:
    """This project's slots for ``cron`` (raises InvalidSchedule like the config would)."""
    return CronTrigger(compile_cron(cron, job_name), zone).next_slot


def croniter_slots(cron: str, zone: ZoneInfo) -> NextSlot:
    """What croniter 7 (Airflow's and rq-scheduler's cron) makes of ``cron``, in ``zone``."""

    def next_after(after: datetime) -> datetime | None:
        found = croniter(cron, after.astimezone(zone)).get_next(datetime)
        return found.astimezone(UTC) if isinstance(found, datetime) else None

    return next_after


def celery_slots(schedule: Any, app: Any, zone: ZoneInfo) -> NextSlot:
    """When celery beat would run a ``celery.schedules.crontab``, by its own arithmetic.

    Beat asks the schedule how long remains after the last run and sleeps that many real
    seconds; so does this, with the schedule's clock stopped at the last run.
    """
    clock = {"now": datetime.now(UTC)}
    copy = type(schedule)(
        minute=schedule._orig_minute,
        hour=schedule._orig_hour,
        day_of_week=schedule._orig_day_of_week,
        day_of_month=schedule._orig_day_of_month,
        month_of_year=schedule._orig_month_of_year,
        nowfun=lambda: clock["now"],
        app=app,
    )

    def next_after(after: datetime) -> datetime | None:
        local = after.astimezone(zone)
        clock["now"] = local
        remaining: timedelta = copy.remaining_estimate(local)
        return after.astimezone(UTC) + remaining

    return next_after
