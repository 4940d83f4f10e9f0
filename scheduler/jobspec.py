"""One job of the config: its raw table, validated into a frozen `JobSpec` with its trigger.

Errors are appended to a list as one line each, naming file, job and field, so a config with
many problems is reported whole.
"""

from __future__ import annotations

import importlib.resources
import json
import math
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scheduler.durations import format_duration, parse_duration, shown
from scheduler.errors import InvalidSchedule
from scheduler.triggers import (
    AtTrigger,
    CronExpression,
    CronTrigger,
    EveryTrigger,
    Trigger,
    compile_cron,
)

JOB_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def name_in_json(name: str) -> str:
    """`name` as it reads inside a JSON string (json.dumps without the quotes); a valid job
    name needs no escape, so the common case costs no encoder."""
    return name if JOB_NAME.fullmatch(name) else json.dumps(name)[1:-1]


Catchup = Literal["all", "latest", "none"]
ScheduleKind = Literal["cron", "every", "at"]
# What a slot does while the job's previous run is still running (as its worker reports).
Overlap = Literal["allow", "skip"]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=1)
def _tzdata_keys() -> frozenset[str]:
    # ZoneInfo(name) opens whatever file the name leads to under the tzdata package: "Europe"
    # is a directory there, a 300-character name is an OSError, "../x" leaves it. So a name is
    # looked up in the package's own list of zones before anything is opened.
    zones = importlib.resources.files("tzdata").joinpath("zones")
    return frozenset(zones.read_text(encoding="utf-8").split())


def read_zone(name: object) -> zoneinfo.ZoneInfo:
    """A zone of the pinned tzdata package (docs: every node reads the same rules)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f'expected a time zone name like "Europe/Berlin", got {shown(name)}')
    if name not in _tzdata_keys():
        raise ValueError(
            f'unknown time zone {shown(name)} (use a tz database name like "Europe/Berlin")'
        )
    return zoneinfo.ZoneInfo(name)


# Far deeper than any task's arguments, and far shallower than the recursion limit of the
# JSON encoder, the config hash and the worker's decoder.
MAX_JSON_DEPTH = 32
_JSON_WORDS = "strings, numbers, booleans, lists, tables"


def json_problem(value: object, field_name: str) -> str | None:
    """Why ``value`` cannot travel as JSON in a task message (naming where inside it), or None.

    Walked with a stack, not recursion, so a deep value is measured rather than crashing us.
    """
    if not value:
        return None  # most jobs: no args, no kwargs
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        pass  # the walk below says where and why
    else:
        # Fewer brackets than the bound: shallow enough, with no walk (~1 us a job).
        if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
            return None
    stack: list[tuple[object, str, int]] = [(value, field_name, 0)]
    while stack:
        item, place, depth = stack.pop()
        if isinstance(item, str | bool | int):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return f"{place} is {item!r}, which JSON cannot carry (no nan or inf)"
            continue
        if isinstance(item, list | tuple | dict):
            if depth == MAX_JSON_DEPTH:
                return f"nested deeper than {MAX_JSON_DEPTH} lists or tables (at {place})"
            if isinstance(item, dict):
                for key in item:
                    if not isinstance(key, str):
                        return f"values must be JSON ({_JSON_WORDS}); {place} has key {key!r}"
                children = [(v, f"{place}.{name_in_json(k)}", depth + 1) for k, v in item.items()]
            else:
                children = [(v, f"{place}[{i}]", depth + 1) for i, v in enumerate(item)]
            stack.extend(reversed(children))
            continue
        kind = type(item).__name__
        return f"values must be JSON ({_JSON_WORDS}); {place} is a {kind}: {shown(item)}"
    return None


# kombu's Redis transport keeps these keys for itself (kombu/transport/redis.py: unacked_key,
# unacked_index_key, unacked_mutex_key, keyprefix_queue and the binding keys), and joins a queue
# name and a priority with its separator: a queue by such a name would read or clobber them.
_KOMBU_KEYS = frozenset({"unacked", "unacked_index", "unacked_mutex"})
_KOMBU_PREFIX = "_kombu."
_KOMBU_PRIORITY_SEP = "\x06\x16"


def queue_problem(queue: str, namespace: str | None) -> str | None:
    """Why ``queue`` cannot be a Celery queue in this deployment's Redis, or None."""
    if not queue.strip():
        return f"must name a queue, got {shown(queue)}"
    if namespace is not None and queue.startswith(f"{namespace}:"):
        return (
            f"{shown(queue)} is a key of this deployment (namespace {namespace!r}); "
            f'a queue may not start with "{namespace}:"'
        )
    if queue in _KOMBU_KEYS or queue.startswith(_KOMBU_PREFIX):
        return f"{shown(queue)} is a key kombu's Redis transport keeps for itself"
    if _KOMBU_PRIORITY_SEP in queue:
        return f"{shown(queue)} contains kombu's priority separator \\x06\\x16"
    return None


def webhook_problem(url: str) -> str | None:
    """Why `url` cannot be an alert webhook, or None: an absolute http(s) URL with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"expected an http:// or https:// URL, got {shown(url)}"
    if any(not c.isprintable() or c.isspace() for c in url):
        return f"a URL may not contain blanks or control characters, got {shown(url)}"
    return None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _JobTable(Strict):
    task: str
    cron: str | None = None
    every: int | float | str | None = None
    at: datetime | str | None = None
    timezone: str | None = None
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    queue: str = "celery"
    catchup: Catchup = "all"
    misfire_grace: int | float | str = "5m"
    start: datetime | str | None = None
    overlap: Overlap = "allow"
    alert_after: int | float | str | None = None
    alert_task: str | None = None
    alert_webhook: str | None = None


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job, validated: what to send, when, and what a new leader does with missed slots."""

    name: str
    task: str
    kind: ScheduleKind
    schedule: str  # the schedule as written, for people
    timezone: zoneinfo.ZoneInfo
    trigger: Trigger = field(compare=False)
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    queue: str = "celery"
    catchup: Catchup = "all"
    misfire_grace: timedelta = timedelta(minutes=5)
    overlap: Overlap = "allow"
    # The dead man's switch: alert when no run succeeded for this long (None: off), by
    # enqueuing `alert_task` and/or POSTing to `alert_webhook` (None: [scheduler]'s defaults).
    alert_after: timedelta | None = None
    alert_task: str | None = None
    alert_webhook: str | None = None

    def renamed(self, name: str) -> JobSpec:
        """The same job under another name (its schedule must not depend on the name)."""
        return JobSpec(
            name, self.task, self.kind, self.schedule, self.timezone, self.trigger, self.args,
            self.kwargs, self.queue, self.catchup, self.misfire_grace, self.overlap,
            self.alert_after, self.alert_task, self.alert_webhook,
        )  # fmt: skip

    def fingerprint(self) -> dict[str, Any]:
        """What makes two nodes agree on this job; feeds the config hash."""
        return {
            "task": self.task,
            "kind": self.kind,
            "schedule": self.schedule,
            "timezone": self.timezone.key,
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
            "queue": self.queue,
            "catchup": self.catchup,
            "misfire_grace_s": self.misfire_grace.total_seconds(),
            # An every job's grid: two configs differing only in it run different slots.
            "start": self.trigger.start.isoformat()
            if isinstance(self.trigger, EveryTrigger)
            else None,
            "overlap": self.overlap,
            "alert_after_s": None if self.alert_after is None else self.alert_after.total_seconds(),
            "alert_task": self.alert_task,
            "alert_webhook": self.alert_webhook,
        }


def build_job(
    path: Path,
    name: str,
    table: object,
    default_zone: zoneinfo.ZoneInfo,
    problems: list[str],
    namespace: str | None = None,
) -> JobSpec | None:
    """The job ``name`` of ``path``, or None with its problems appended; ``namespace`` (None
    when the settings are invalid) is the prefix of this deployment's keys, no queue's."""
    where = f"{path.name}: jobs.{name}"
    if not isinstance(table, dict):
        problems.append(f"{where}: expected a table")
        return None
    try:
        raw = _JobTable.model_validate(table)
    except ValidationError as exc:
        problems.extend(validation_lines(path, f"jobs.{name}", exc))
        return None
    before = len(problems)
    zone = default_zone
    if raw.timezone is not None:
        try:
            zone = read_zone(raw.timezone)
        except ValueError as exc:
            problems.append(f"{where}.timezone: {exc}")
    kinds = [k for k in ("cron", "every", "at") if getattr(raw, k) is not None]
    if len(kinds) != 1:
        found = ", ".join(kinds) if kinds else "none"
        problems.append(f"{where}: needs exactly one of cron, every, at (found {found})")
        return None
    kind: ScheduleKind = kinds[0]  # type: ignore[assignment]
    if not raw.task.strip():
        problems.append(f"{where}.task: must name a Celery task, got {shown(raw.task)}")
    queue_wrong = queue_problem(raw.queue, namespace)
    if queue_wrong is not None:
        problems.append(f"{where}.queue: {queue_wrong}")
    if raw.start is not None and kind != "every":
        problems.append(f"{where}.start: only an `every` job has a start")
    for key, value in (("args", raw.args), ("kwargs", raw.kwargs)):
        json_wrong = json_problem(value, key)
        if json_wrong is not None:
            problems.append(f"{where}.{key}: {json_wrong}")
    try:
        grace = parse_duration(raw.misfire_grace)
    except ValueError as exc:
        problems.append(f"{where}.misfire_grace: {exc}")
        grace = timedelta(0)
    alert_after = None
    if raw.alert_after is not None:
        try:
            alert_after = parse_duration(raw.alert_after)
            if alert_after < timedelta(seconds=1):
                raise ValueError(f"must be at least 1s, got {format_duration(alert_after)}")
        except ValueError as exc:
            problems.append(f"{where}.alert_after: {exc}")
    if raw.alert_task is not None and not raw.alert_task.strip():
        problems.append(f"{where}.alert_task: must name a Celery task, got {shown(raw.alert_task)}")
    if raw.alert_webhook is not None:
        wrong = webhook_problem(raw.alert_webhook)
        if wrong is not None:
            problems.append(f"{where}.alert_webhook: {wrong}")
    try:
        trigger, text = _trigger(name, kind, raw, zone)
    except (InvalidSchedule, ValueError) as exc:
        field_name = "start" if isinstance(exc, _StartError) else kind
        problems.append(f"{where}.{field_name}: {exc}")
        return None
    never = _never_fires(trigger)
    if never is not None:
        problems.append(f"{where}.{kind}: {never}")
    if len(problems) > before:
        return None
    return JobSpec(
        name=name,
        task=raw.task,
        kind=kind,
        schedule=text,
        timezone=zone,
        trigger=trigger,
        args=tuple(raw.args),
        kwargs=dict(raw.kwargs),
        queue=raw.queue,
        catchup=raw.catchup,
        misfire_grace=grace,
        overlap=raw.overlap,
        alert_after=alert_after,
        alert_task=raw.alert_task,
        alert_webhook=raw.alert_webhook,
    )


class _StartError(ValueError):
    pass


def _never_fires(trigger: Trigger) -> str | None:
    """Why a schedule has no slot from now on, or None.

    An ``at`` in the past is allowed: it fired once and stays written down. An ``every`` always
    fires again: its start is at most the year 9999 and its interval at most 100 years, so
    its grid runs out only for a clock past the year 9899 (not worth 2 us a job).
    """
    if isinstance(trigger, CronTrigger):
        return _cron_never_fires(trigger.expression, trigger.tz)
    return None


# A cron's day pattern is checked when compiled; what is left is a wildcard job whose every
# time falls in a DST gap, where it has no slots. next_slot answers that in microseconds for a
# cron that fires and in up to 0.3 s (401 years of zone periods) for one that never does, so
# the verdict is kept per distinct (expression, zone): 100,000 H jobs share a few dozen.
@lru_cache(maxsize=4096)
def _cron_never_fires(expression: CronExpression, zone: zoneinfo.ZoneInfo) -> str | None:
    if CronTrigger(expression, zone).next_slot(datetime.now(UTC)) is not None:
        return None
    if expression.wildcard:
        return (
            f"never fires: in {zone.key} every time it names falls in a daylight-saving gap, "
            "and a job with a wildcard minute or hour has no slots in a gap"
        )
    return "never fires: no slot in the next 400 years"


def _trigger(
    name: str, kind: ScheduleKind, raw: _JobTable, zone: zoneinfo.ZoneInfo
) -> tuple[Trigger, str]:
    if kind == "cron":
        assert raw.cron is not None
        return CronTrigger(compile_cron(raw.cron, name), zone), raw.cron.strip()
    if kind == "every":
        every = parse_duration(raw.every)
        seconds = every.total_seconds()
        if seconds < 1 or seconds != int(seconds):
            raise ValueError(f"must be whole seconds, at least 1s, got {raw.every!r}")
        try:
            start = _EPOCH if raw.start is None else _instant(raw.start, zone)
        except ValueError as exc:
            raise _StartError(str(exc)) from None
        if start.microsecond:
            raise _StartError("must be whole seconds")
        return EveryTrigger(int(seconds), start), format_duration(every)
    assert raw.at is not None
    instant = _instant(raw.at, zone)
    return AtTrigger(instant), instant.isoformat()


def _instant(value: datetime | str | date, zone: zoneinfo.ZoneInfo) -> datetime:
    """An offset datetime, or a local one read in the job's zone (earlier pass if ambiguous)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"expected an ISO 8601 instant like 2026-12-01T09:00:00+01:00, got {value!r}"
            ) from None
    if not isinstance(value, datetime):
        raise ValueError(f"expected a date and time, got {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # Year 1 or 9999 with an offset that carries it past datetime's range.
        raise ValueError(f"{value.isoformat()} is outside the years 1-9999 in UTC") from None


_PYDANTIC_WORDING = {
    "extra_forbidden": "unknown key",
    "missing": "missing (required)",
}


def validation_lines(path: Path, prefix: str, exc: ValidationError) -> list[str]:
    lines = []
    for error in exc.errors():
        where = ".".join([prefix, *(str(part) for part in error["loc"])])
        message = _PYDANTIC_WORDING.get(error["type"], error["msg"])
        message = message.removeprefix("Value error, ")
        if error["type"] == "literal_error":
            message = f"{message}, got {error['input']!r}"
        lines.append(f"{path.name}: {where}: {message}")
    return lines
