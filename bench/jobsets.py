"""The job sets the measurements schedule, in a form every driver translates to its own config.

A `Job` says what is due and when, nothing about how a scheduler spells it: each driver
(``ours.py``, ``peers/drivers.py``) writes it as a TOML table or a ``beat_schedule`` entry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

TASK = "bench.noop"  # defined in peers/beatapp.py, for the worker that consumes one burst
QUEUE = "bench"  # the list the collector watches; no worker consumes it while we measure


@dataclass(frozen=True, slots=True)
class Cron:
    """A crontab at minute granularity (all three schedulers) or with a seconds field (ours)."""

    minute: str = "*"
    hour: str = "*"
    day_of_month: str = "*"
    month: str = "*"
    day_of_week: str = "*"
    second: str | None = None  # None: the 5-field form

    def text(self) -> str:
        fields = [self.minute, self.hour, self.day_of_month, self.month, self.day_of_week]
        return " ".join([self.second, *fields] if self.second is not None else fields)


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    cron: Cron | None = None
    every_s: int | None = None  # slots at k * every_s (Unix epoch anchor)
    queue: str = QUEUE
    task: str = TASK


def names(count: int, prefix: str = "j") -> list[str]:
    width = len(str(count))
    return [f"{prefix}{index:0{width}d}" for index in range(count)]


def at_instant(count: int, instant_s: int, seconds: bool) -> list[Job]:
    """`count` hourly jobs all due at `instant_s`: one shared expression, like `0 * * * *`.

    With `seconds` the 6-field form pins the second too; otherwise `instant_s` must be a
    minute boundary (celery beat and RedBeat know no seconds in a crontab). The next slot
    after a start within the hour before `instant_s` is `instant_s` itself.
    """
    moment = time.gmtime(instant_s)
    if not seconds and moment.tm_sec:
        raise ValueError("a 5-field crontab can only be due at a minute boundary")
    cron = Cron(minute=str(moment.tm_min), second=str(moment.tm_sec) if seconds else None)
    return [Job(name, cron=cron) for name in names(count)]


def every(count: int, every_s: int, queue: str = QUEUE, prefix: str = "e") -> list[Job]:
    return [Job(name, every_s=every_s, queue=queue) for name in names(count, prefix)]


def never_due(count: int, distinct: int, now_s: float) -> list[Job]:
    """`count` jobs with `distinct` different expressions, none due within weeks of `now_s`.

    Each is one fixed minute of one day of a month at least two months away, so an idle
    scheduler has nothing to send while we watch it.
    """
    this_month = time.gmtime(now_s).tm_mon
    far_months = [m for m in range(1, 13) if (m - this_month) % 12 not in (0, 1, 11)]
    per_month = 28 * 24 * 60
    if distinct > per_month * len(far_months):
        raise ValueError(f"at most {per_month * len(far_months)} distinct expressions")
    expressions = []
    for index in range(distinct):
        month_index, rest = divmod(index, per_month)
        day, rest = divmod(rest, 24 * 60)
        hour, minute = divmod(rest, 60)
        expressions.append(
            Cron(
                minute=str(minute),
                hour=str(hour),
                day_of_month=str(day + 1),
                month=str(far_months[month_index]),
            )
        )
    return [Job(name, cron=expressions[i % distinct]) for i, name in enumerate(names(count))]
