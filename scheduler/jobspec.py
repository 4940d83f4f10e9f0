"""One job of the config: its raw table, validated into a frozen `JobSpec` with its trigger.

Errors are appended to a list as one line each, naming file, job and field, so a config with
many problems is reported whole.
"""

from __future__ import annotations

import json
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scheduler.durations import format_duration, parse_duration
from scheduler.errors import InvalidSchedule
from scheduler.triggers import AtTrigger, CronTrigger, EveryTrigger, Trigger, compile_cron

JOB_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def name_in_json(name: str) -> str:
    """`name` as it reads inside a JSON string (json.dumps without the quotes); a valid job
    name needs no escape, so the common case costs no encoder."""
    return name if JOB_NAME.fullmatch(name) else json.dumps(name)[1:-1]


Catchup = Literal["all", "latest", "none"]
ScheduleKind = Literal["cron", "every", "at"]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def read_zone(name: object) -> zoneinfo.ZoneInfo:
    if not isinstance(name, str) or not name:
        raise ValueError(f'expected a time zone name like "Europe/Berlin", got {name!r}')
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


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

    def renamed(self, name: str) -> JobSpec:
        """The same job under another name (its schedule must not depend on the name)."""
        return JobSpec(
            name, self.task, self.kind, self.schedule, self.timezone, self.trigger, self.args,
            self.kwargs, self.queue, self.catchup, self.misfire_grace,
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
        }


def build_job(
    path: Path, name: str, table: object, default_zone: zoneinfo.ZoneInfo, problems: list[str]
) -> JobSpec | None:
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
    if raw.start is not None and kind != "every":
        problems.append(f"{where}.start: only an `every` job has a start")
    for key, value in (("args", raw.args), ("kwargs", raw.kwargs)):
        try:
            json.dumps(value)
        except TypeError:
            problems.append(f"{where}.{key}: values must be JSON (strings, numbers, lists, tables)")
    try:
        grace = parse_duration(raw.misfire_grace)
    except ValueError as exc:
        problems.append(f"{where}.misfire_grace: {exc}")
        grace = timedelta(0)
    try:
        trigger, text = _trigger(name, kind, raw, zone)
    except (InvalidSchedule, ValueError) as exc:
        field_name = "start" if isinstance(exc, _StartError) else kind
        problems.append(f"{where}.{field_name}: {exc}")
        return None
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
    )


class _StartError(ValueError):
    pass


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
    return value.astimezone(UTC)


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
