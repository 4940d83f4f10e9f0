"""A ``celery.schedules.crontab`` as cron text for this project, field by field.

Celery expands each field to a set of numbers and always ANDs the day fields: a day fires when
its month, its day of the month *and* its weekday are all in their sets. This project follows
cronie: when both day fields are restricted it fires on *either*. So:

- a field the user wrote as text is kept as written when this project's parser gives the same
  set (``"*/15"``, ``"mon-fri"``), else written as the set (``"1-5,7"``);
- a day field whose set is every day is written ``*``, which keeps celery's AND exactly;
- "the Nth weekday" (day_of_month one of 1-7, 8-14, 15-21, 22-28 and a weekday) becomes
  ``MON#1``-style items, which is exactly celery's AND;
- any other pair of restricted day fields is written as it is and flagged: the caller compares
  both schedules and names the first slot where they part.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from scheduler.errors import InvalidSchedule
from scheduler.triggers.cron import fields as f

_WEEK_BLOCKS = {frozenset(range(7 * k - 6, 7 * k + 1)): k for k in range(1, 5)}


@dataclass(frozen=True, slots=True)
class CronText:
    text: str
    days_anded: bool  # both day fields restricted: celery ANDs them where cron ORs


def cron_text(schedule: Any) -> CronText:
    """The 5-field text for a celery crontab (its ``_orig_*`` fields and expanded sets)."""
    minute = _field(schedule._orig_minute, schedule.minute, f.MINUTE, range(60))
    hour = _field(schedule._orig_hour, schedule.hour, f.HOUR, range(24))
    month = _field(schedule._orig_month_of_year, schedule.month_of_year, f.MONTH, range(1, 13))
    dom = _field(schedule._orig_day_of_month, schedule.day_of_month, f.DAY_OF_MONTH, range(1, 32))
    dow = _field(schedule._orig_day_of_week, schedule.day_of_week, f.DAY_OF_WEEK, range(7))
    anded = dom != "*" and dow != "*"
    week = _WEEK_BLOCKS.get(frozenset(schedule.day_of_month))
    if anded and week is not None:
        dom, anded = "*", False
        dow = ",".join(f"{day}#{week}" for day in sorted(schedule.day_of_week))
    return CronText(f"{minute} {hour} {dom} {month} {dow}", anded)


def _field(original: object, expanded: Iterable[int], spec: f.FieldSpec, every: range) -> str:
    values = frozenset(expanded)
    if values == frozenset(every):
        return "*"
    if isinstance(original, str) and _our_values(original.strip(), spec) == values:
        return original.strip()
    return _as_ranges(sorted(values))


def _our_values(text: str, spec: f.FieldSpec) -> frozenset[int] | None:
    """What this project's parser makes of one field's text, or None (not plain values)."""
    try:
        if spec is f.DAY_OF_MONTH:
            dom = f.parse_day_of_month(text)
            return None if dom.last_day or dom.nearest_weekdays else dom.days
        if spec is f.DAY_OF_WEEK:
            dow = f.parse_day_of_week(text)
            return None if dow.last_weekdays or dow.nth_weekdays else dow.weekdays
        return f.parse_field(text, spec)
    except InvalidSchedule:
        return None


def _as_ranges(values: list[int]) -> str:
    """``[1, 2, 3, 5]`` as ``"1-3,5"``."""
    parts, start = [], 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[i - 1] + 1:
            low, high = values[start], values[i - 1]
            parts.append(str(low) if low == high else f"{low}-{high}")
            start = i
    return ",".join(parts)
