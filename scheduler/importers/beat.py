"""A Celery app's ``beat_schedule`` as jobs of this project (pure: the app is given).

Each entry becomes one ``[jobs.NAME]``: its task, args, kwargs, the routing and execution
options this project has keys for, and its schedule (crontab -> ``cron``, an interval ->
``every``). What has no equivalent (solar, a custom schedule class, an absolute ``expires``)
is left out with a comment and a problem line, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from celery.schedules import crontab, schedule, solar

from scheduler.durations import format_duration
from scheduler.errors import InvalidSchedule
from scheduler.importers.celery_crontab import cron_text
from scheduler.importers.compare import first_difference
from scheduler.importers.differences import croniter_note, shown_slot
from scheduler.importers.names import NameBook, valid_name
from scheduler.importers.sources import celery_slots, ours
from scheduler.importers.toml_text import ImportedJob, ImportResult, NotTomlValue, toml_value
from scheduler.jobspec import read_zone

_EVERY_NOTE = (
    "celery beat counts an interval from its own start; here `every` slots are on a fixed "
    "grid (the Unix epoch + k * every), the same on every node"
)
_DURATION_OPTIONS = ("expires", "soft_time_limit", "time_limit")


class Unsupported(ValueError):
    """An entry, or a part of one, that has no equivalent here: the message says why."""


def import_beat(app: Any, since: datetime) -> ImportResult:
    """Every entry of ``app.conf.beat_schedule``; schedules are compared from ``since``."""
    zone_name = app.conf.timezone or "UTC"
    notes, problems, jobs = [], [], []
    try:
        zone = read_zone(str(zone_name))
    except ValueError as exc:
        return ImportResult(problems=(f"app timezone: {exc}",))
    if not app.conf.enable_utc and not app.conf.timezone:
        problems.append(
            "enable_utc is off and no timezone is set: beat used the host's local "
            "time; imported as UTC"
        )
    names = NameBook()
    entries: Mapping[str, Any] = app.conf.beat_schedule or {}
    for entry_name, entry in entries.items():
        where = f"beat_schedule[{entry_name!r}]"
        try:
            job, lines = _entry(app, str(entry_name), entry, zone, names, since)
        except Unsupported as exc:
            notes.append(f"{where} not imported: {exc}")
            problems.append(f"{where}: not imported: {exc}")
            continue
        jobs.append(job)
        problems.extend(f"{where}: {line}" for line in lines)
    if any(dict(job.keys).get("every") for job in jobs):
        notes.append(_EVERY_NOTE)
    return ImportResult(tuple(jobs), tuple(notes), tuple(problems))


def _entry(
    app: Any, entry_name: str, entry: object, zone: ZoneInfo, names: NameBook, since: datetime
) -> tuple[ImportedJob, list[str]]:
    """One job and the problem lines worth a reader's attention (also in its comments)."""
    if not isinstance(entry, Mapping):
        raise Unsupported(f"expected a dict, got {type(entry).__name__}")
    task = entry.get("task")
    if not isinstance(task, str) or not task.strip():
        raise Unsupported(f"needs a task name, got {task!r}")
    wanted = valid_name(entry_name)
    comments: list[str] = []
    warnings: list[str] = []
    keys: list[tuple[str, Any]] = [("task", task)]
    keys += _schedule(app, wanted, entry.get("schedule"), zone, since, comments, warnings)
    if entry.get("relative"):
        comments.append("relative=True (rounding to the interval) is not carried over")
    args, kwargs = entry.get("args") or (), entry.get("kwargs") or {}
    if not isinstance(args, list | tuple):
        raise Unsupported(f"args must be a list or tuple, got {type(args).__name__}")
    if not isinstance(kwargs, Mapping):
        raise Unsupported(f"kwargs must be a dict, got {type(kwargs).__name__}")
    for key, value in (("args", list(args)), ("kwargs", dict(kwargs))):
        if value:
            _check_value(value, key)
            keys.append((key, value))
    options = entry.get("options") or {}
    if not isinstance(options, Mapping):
        raise Unsupported(f"options must be a dict, got {type(options).__name__}")
    for option, value in options.items():
        try:
            keys.append(_option(str(option), value))
        except Unsupported as exc:
            comments.append(f"options[{option!r}] not carried over: {exc}")
            warnings.append(f"options[{option!r}] not carried over: {exc}")
    name = names.claim(wanted)  # only once the entry is imported: no name is used up
    if name != entry_name:
        comments.insert(
            0, f"beat entry {entry_name!r}, renamed: job names are letters, digits, _ - ."
        )
    return ImportedJob(name, tuple(keys), tuple(comments)), warnings


def _schedule(
    app: Any,
    name: str,
    value: object,
    zone: ZoneInfo,
    since: datetime,
    comments: list[str],
    warnings: list[str],
) -> list[tuple[str, Any]]:
    if isinstance(value, solar):
        event = getattr(value, "event", "?")
        raise Unsupported(
            f"solar schedules ({event}) are unsupported: no key fires at sunrise or sunset; "
            "use a cron near it"
        )
    if isinstance(value, crontab):
        return _crontab(app, name, value, zone, since, comments, warnings)
    if isinstance(value, schedule):
        return [("every", _every(value.run_every))]
    if isinstance(value, timedelta | int | float) and not isinstance(value, bool):
        return [("every", _every(value))]
    raise Unsupported(
        f"schedule {value!r} ({type(value).__name__}) is unsupported: only "
        "crontab, schedule, timedelta and seconds have an equivalent"
    )


def _crontab(
    app: Any,
    name: str,
    value: Any,
    zone: ZoneInfo,
    since: datetime,
    comments: list[str],
    warnings: list[str],
) -> list[tuple[str, Any]]:
    text = cron_text(value)
    try:
        mine = ours(text.text, zone, name)
    except InvalidSchedule as exc:
        raise Unsupported(f"crontab {text.text!r}: {exc}") from None
    try:
        differs = first_difference(mine, celery_slots(value, app, zone), since, zone)
    except (RuntimeError, ValueError) as exc:  # celery's roll_over gives up on odd specs
        differs = None
        comments.append(f"celery could not compute this crontab's slots to compare: {exc}")
    if differs is not None:
        why = (
            "celery's crontab() needs day_of_month AND day_of_week to match; cron (and this "
            "project) fires on either when both are restricted"
            if text.days_anded
            else "celery's crontab arithmetic differs around a daylight-saving change"
            if differs.near_offset_change
            else "celery's crontab arithmetic differs here"
        )
        line = (
            f"celery fires {shown_slot(differs.theirs, zone)}, this cron fires "
            f"{shown_slot(differs.ours, zone)}: {why}"
        )
        comments.append(line)
        warnings.append(line)
    reference = croniter_note(text.text, mine, zone, since)
    if reference is not None:
        comments.append(reference)
    keys: list[tuple[str, Any]] = [("cron", text.text)]
    if zone.key != "UTC":
        keys.append(("timezone", zone.key))
    return keys


def _every(value: object) -> str:
    delta = value if isinstance(value, timedelta) else timedelta(seconds=float(value))  # type: ignore[arg-type]
    seconds = delta.total_seconds()
    if seconds < 1 or seconds != int(seconds):
        raise Unsupported(
            f"interval {seconds:g}s is not whole seconds of at least 1s, which `every` needs"
        )
    return format_duration(delta)


def _option(option: str, value: Any) -> tuple[str, Any]:
    if option in ("queue", "exchange"):
        value = getattr(value, "name", value)  # a kombu Queue or Exchange
        if not isinstance(value, str):
            raise Unsupported(f"expected a name, got {value!r}")
        return option, value
    if option == "routing_key" and isinstance(value, str):
        return option, value
    if option == "priority" and isinstance(value, int) and not isinstance(value, bool):
        return option, value
    if option == "ignore_result" and isinstance(value, bool):
        return option, value
    if option == "headers" and isinstance(value, Mapping):
        _check_value(value, "headers")
        return option, dict(value)
    if option in _DURATION_OPTIONS:
        if isinstance(value, datetime):
            raise Unsupported("an absolute time; only a duration has an equivalent")
        if isinstance(value, timedelta | int | float) and not isinstance(value, bool):
            delta = value if isinstance(value, timedelta) else timedelta(seconds=value)
            return option, format_duration(delta)
    if option in (
        "queue",
        "exchange",
        "routing_key",
        "priority",
        "ignore_result",
        "headers",
        *_DURATION_OPTIONS,
    ):
        raise Unsupported(f"unexpected value {value!r}")
    raise Unsupported("no job key for it")


def _check_value(value: object, where: str) -> None:
    try:
        toml_value(value, where)
    except NotTomlValue as exc:
        raise Unsupported(str(exc)) from None
