"""Schedules and times in words, for people: "At 09:00, Monday through Friday", "in 3 min".

Pure: no I/O, no clock of its own. Cron expressions are put into words by cron-descriptor,
given the expression with every `H` already resolved (what the job really runs); only where
our day rule differs from the one that library assumes is its wording corrected.
"""

from __future__ import annotations

from datetime import time
from functools import lru_cache

from cron_descriptor import (
    ExpressionDescriptor,
    FormatError,
    MissingFieldError,
    Options,
    WrongArgumentError,
)

from scheduler.jobspec import JobSpec
from scheduler.triggers import CalendarTrigger, CronTrigger, EveryTrigger
from scheduler.triggers.bounded import BoundedTrigger
from scheduler.triggers.calendar import format_at

_MINUTE_S, _HOUR_S, _DAY_S = 60, 3600, 86400
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")  # fmt: skip


def schedule_words(job: JobSpec) -> str:
    """The job's schedule in words; the expression itself where no wording is available."""
    trigger = job.trigger
    if isinstance(trigger, BoundedTrigger):
        trigger = trigger.inner  # start, end and max_runs are shown beside it
    if isinstance(trigger, CronTrigger):
        return cron_words(trigger.expression.text)
    if isinstance(trigger, EveryTrigger):
        return f"Every {_span(trigger.every_s)}"
    if isinstance(trigger, CalendarTrigger):
        return calendar_words(trigger)
    return "Once"  # the instant itself is beside it


def calendar_words(trigger: CalendarTrigger) -> str:
    """E.g. "Every 2 weeks at 09:00, from Monday 2026-01-05"; months and years name the day."""
    unit = trigger.unit[:-1] if trigger.count == 1 else f"{trigger.count} {trigger.unit}"
    first = trigger.first_day
    on = note = ""
    if trigger.unit == "months":
        on = f" on the {_ordinal(first.day)}"
        if first.day > 28:
            note = f" (skipped in months without a {_ordinal(first.day)})"
    elif trigger.unit == "years":
        on = f" on {first.day} {_MONTHS[first.month - 1]}"
        if (first.month, first.day) == (2, 29):
            note = " (skipped in years without one)"
    local = trigger.start.astimezone(trigger.tz)
    since = f"{first:%A} {first.isoformat()}"
    if local.date() == first and local.time() != time(0):
        since += f" {format_at(local.hour * 3600 + local.minute * 60 + local.second)}"
    return f"Every {unit}{on} at {format_at(trigger.at_s)}, from {since}{note}"


def _ordinal(day: int) -> str:
    """1 -> "1st", 22 -> "22nd", 13 -> "13th"."""
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


@lru_cache(maxsize=4096)  # thousands of jobs share a few expressions
def cron_words(expression: str) -> str:
    """E.g. ``0 9 * * 1-5`` -> "At 09:00, Monday through Friday"."""
    options = Options()
    options.use_24hour_time_format = True
    options.throw_exception_on_parse_error = True
    try:
        words = str(ExpressionDescriptor(expression, options).get_description())
    # A form the library does not know: the expression says it best.
    except (FormatError, MissingFieldError, WrongArgumentError, ValueError, IndexError, KeyError):
        return expression
    if _days_both_needed(expression):
        # Vixie cron: a day field written from "*" (like "*/2") makes both day fields apply,
        # where the library assumes either does.
        words = words.replace(", or on ", ", and only on ")
    return words


def _days_both_needed(expression: str) -> bool:
    fields = expression.split()
    if len(fields) < 5:
        return False
    dom, dow = fields[-3], fields[-1]
    restricted = dom != "*" and dow != "*"
    return restricted and (dom.startswith("*") or dow.startswith("*"))


def _span(seconds: int) -> str:
    """ "30 seconds", "5 minutes", "1 hour 30 minutes"."""
    parts = []
    for unit_s, unit in ((_DAY_S, "day"), (_HOUR_S, "hour"), (_MINUTE_S, "minute"), (1, "second")):
        count, seconds = divmod(seconds, unit_s)
        if count:
            parts.append(f"{count} {unit}" if count == 1 else f"{count} {unit}s")
    if len(parts) == 1 and parts[0].startswith("1 "):
        return parts[0][2:]  # "Every minute", not "Every 1 minute"
    return " ".join(parts) or "0 seconds"


def duration_words(seconds: float) -> str:
    """A short span: "12 s", "3 min", "2 h 5 min", "4 days"."""
    whole = round(abs(seconds))
    if whole < _MINUTE_S:
        return f"{whole} s"
    if whole < _HOUR_S:
        return f"{whole // _MINUTE_S} min"
    if whole < _DAY_S:
        hours, minutes = divmod(whole // _MINUTE_S, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days = whole // _DAY_S
    return f"{days} day" if days == 1 else f"{days} days"


def left_words(seconds: float | None) -> str | None:
    """Time until an instant: "in 3 min" (None: there is none)."""
    if seconds is None:
        return None
    return "now" if seconds < 1 else f"in {duration_words(seconds)}"


def passed_words(seconds: float | None) -> str | None:
    """Time since an instant: "12 s ago"."""
    if seconds is None:
        return None
    return "just now" if seconds < 1 else f"{duration_words(seconds)} ago"
