"""One job of the config: its raw table, validated into a frozen `JobSpec` with its trigger.

Errors are appended to a list as one line each, naming file, job and field, so a config with
many problems is reported whole.
"""

from __future__ import annotations

import importlib.resources
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scheduler.durations import format_duration, parse_duration, shown
from scheduler.errors import InvalidSchedule
from scheduler.jobspec_options import (
    JOB_NAME,
    Compose,
    HttpRequest,
    ShellOptions,
    Step,
    json_problem,
    name_in_json,
    read_command,
    read_http,
    read_options,
    read_shell,
    read_steps,
    webhook_problem,
)

__all__ = ["JOB_NAME", "JobSpec", "build_job", "json_problem", "name_in_json", "webhook_problem"]
from scheduler.triggers import (
    AtTrigger,
    CronExpression,
    CronTrigger,
    EveryTrigger,
    Trigger,
    compile_cron,
)
from scheduler.triggers.bounded import bounded
from scheduler.triggers.calendar import calendar_trigger

Catchup = Literal["all", "latest", "none"]
ScheduleKind = Literal["cron", "every", "at", "calendar"]
SCHEDULE_KINDS: tuple[ScheduleKind, ...] = ("cron", "every", "at", "calendar")
# What a job sends: a Celery task, or one of the built-in tasks, or composed tasks.
ACTIONS = ("task", "command", "http", "chain", "group")
SHELL_TASK, HTTP_TASK = "jobs.builtin.shell", "jobs.builtin.http"
_SHELL_KEYS = ("cwd", "env", "timeout", "user")
_RETRY_KEYS = ("retries", "retry_delay", "retry_backoff")
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


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _JobTable(Strict):
    task: str | None = None
    cron: str | None = None
    every: int | float | str | None = None
    at: datetime | str | None = None
    timezone: str | None = None
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    queue: str = "celery"
    catchup: Catchup = "all"
    misfire_grace: int | float | str = "5m"
    start: datetime | date | str | None = None
    overlap: Overlap = "allow"
    alert_after: int | float | str | None = None
    alert_task: str | None = None
    alert_webhook: str | None = None
    calendar: dict[str, Any] | None = None
    routing_key: str | None = None
    exchange: str | None = None
    priority: int | None = None
    headers: dict[str, Any] = Field(default_factory=dict)
    expires: int | float | str | None = None
    soft_time_limit: int | float | str | None = None
    time_limit: int | float | str | None = None
    ignore_result: bool = False
    jitter: int | float | str | None = None
    end: datetime | str | None = None
    max_runs: int | None = None
    enabled: bool = True
    chain: list[Any] | None = None
    group: list[Any] | None = None
    command: list[str] | None = None
    cwd: str | None = None
    env: dict[str, str] | None = None
    timeout: int | float | str | None = None
    user: str | None = None
    http: dict[str, Any] | None = None
    retries: int = 0
    retry_delay: int | float | str = "10s"
    retry_backoff: bool = False


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
    # Message options (scheduler/messages.py puts them into the job's template).
    routing_key: str | None = None
    exchange: str | None = None
    priority: int | None = None  # 0-9
    headers: Mapping[str, Any] = field(default_factory=dict)
    expires: timedelta | Literal["next"] | None = None
    soft_time_limit: timedelta | None = None
    time_limit: timedelta | None = None
    ignore_result: bool = False
    # Bounds of the schedule: a random delay up to jitter, no slot after end, at most max_runs
    # slots from start (the grid origin of an every job, the first day of a calendar one).
    jitter: timedelta | None = None
    start: datetime | None = None
    end: datetime | None = None
    max_runs: int | None = None
    enabled: bool = True  # false: kept and listed, never fired
    # What runs, when not `task` alone: composed steps, a command or an HTTP request.
    steps: tuple[Step, ...] = ()
    compose: Compose | None = None
    command: tuple[str, ...] = ()
    shell: ShellOptions | None = None
    http: HttpRequest | None = None
    # Retries of the built-in tasks (shell, http).
    retries: int = 0
    retry_delay: timedelta = timedelta(seconds=10)
    retry_backoff: bool = False
    calendar: Mapping[str, Any] | None = None  # a calendar job's table, as written

    def renamed(self, name: str) -> JobSpec:
        """The same job under another name (its schedule must not depend on the name)."""
        return JobSpec(
            name, self.task, self.kind, self.schedule, self.timezone, self.trigger, self.args,
            self.kwargs, self.queue, self.catchup, self.misfire_grace, self.overlap,
            self.alert_after, self.alert_task, self.alert_webhook, self.routing_key,
            self.exchange, self.priority, self.headers, self.expires, self.soft_time_limit,
            self.time_limit, self.ignore_result, self.jitter, self.start, self.end,
            self.max_runs, self.enabled, self.steps, self.compose, self.command, self.shell,
            self.http, self.retries, self.retry_delay, self.retry_backoff, self.calendar,
        )  # fmt: skip

    @property
    def action(self) -> str:
        """What the job sends: "task", "command", "http", "chain" or "group"."""
        if self.compose is not None:
            return self.compose
        if self.command:
            return "command"
        return "http" if self.http is not None else "task"

    @property
    def plain(self) -> bool:
        """A task job using none of issue 12's options: today's message and fingerprint."""
        return self.action == "task" and self.retries == 0 and _has_no_options(self)

    def fingerprint(self) -> dict[str, Any]:
        """What makes two nodes agree on this job; feeds the config hash.

        The keys of issue 12's options appear only when set, so the fingerprint (and the config
        hash) of a job that uses none of them is what it was before they existed.
        """
        plain = self.action == "task"
        found: dict[str, Any] = {
            "task": self.task if plain else None,
            "kind": self.kind,
            "schedule": dict(self.calendar) if self.calendar is not None else self.schedule,
            "timezone": self.timezone.key,
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
            "queue": self.queue,
            "catchup": self.catchup,
            "misfire_grace_s": self.misfire_grace.total_seconds(),
            # An every job's grid: two configs differing only in it run different slots.
            "start": None if self.start is None else self.start.isoformat(),
            "overlap": self.overlap,
            "alert_after_s": None if self.alert_after is None else self.alert_after.total_seconds(),
            "alert_task": self.alert_task,
            "alert_webhook": self.alert_webhook,
        }
        hashed = _hashed_cron(self)
        if hashed is not None:
            # H's values changed once (one hash per field): nodes that resolve it differently
            # run different slots, so the resolved text is part of what they must agree on.
            found["cron_hashed"] = hashed
        if self.plain:
            return found
        return _with_options(self, found)


def _hashed_cron(job: JobSpec) -> str | None:
    """The H-resolved text of a cron job that uses H, else None."""
    if job.kind != "cron" or "H" not in job.schedule:
        return None
    trigger = job.trigger
    inner = getattr(trigger, "inner", trigger)  # a BoundedTrigger wraps the cron trigger
    return inner.expression.text if isinstance(inner, CronTrigger) else None


def _has_no_options(job: JobSpec) -> bool:
    return (
        job.routing_key is None and job.exchange is None and job.priority is None
        and not job.headers and job.expires is None and job.soft_time_limit is None
        and job.time_limit is None and not job.ignore_result and job.jitter is None
        and job.end is None and job.max_runs is None and job.enabled
    )  # fmt: skip


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _with_options(job: JobSpec, found: dict[str, Any]) -> dict[str, Any]:
    """`found` with every option the job sets (in the keys drift.job_table reads back)."""
    options: dict[str, Any] = {
        "routing_key": job.routing_key,
        "exchange": job.exchange,
        "priority": job.priority,
        "headers": dict(job.headers) or None,
        "expires_s": job.expires if isinstance(job.expires, str) else _seconds(job.expires),
        "soft_time_limit_s": _seconds(job.soft_time_limit),
        "time_limit_s": _seconds(job.time_limit),
        "ignore_result": job.ignore_result or None,
        "jitter_s": _seconds(job.jitter),
        "end": None if job.end is None else job.end.isoformat(),
        "max_runs": job.max_runs,
        "enabled": None if job.enabled else False,
    }
    if job.compose is not None:
        options[job.compose] = [step.table(job.compose) for step in job.steps]
    if job.command:
        shell = job.shell or ShellOptions()
        options.update(
            command=list(job.command), cwd=shell.cwd, env=dict(shell.env) or None,
            timeout_s=_seconds(shell.timeout), user=shell.user,
        )  # fmt: skip
    if job.http is not None:
        options["http"] = job.http.table()
    if job.retries:
        options.update(
            retries=job.retries, retry_delay_s=job.retry_delay.total_seconds(),
            retry_backoff=job.retry_backoff or None,
        )  # fmt: skip
    found.update((key, value) for key, value in options.items() if value is not None)
    return found


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
    kinds = [k for k in SCHEDULE_KINDS if getattr(raw, k) is not None]
    if len(kinds) != 1:
        found = ", ".join(kinds) if kinds else "none"
        problems.append(f"{where}: needs exactly one of cron, every, at (found {found})")
        return None
    kind: ScheduleKind = kinds[0]
    action = _action(raw, where, problems)
    if action is None:
        return None
    queue_wrong = queue_problem(raw.queue, namespace)
    if queue_wrong is not None:
        problems.append(f"{where}.queue: {queue_wrong}")
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
    options = read_options(raw, where, problems)
    try:
        start = None if raw.start is None else _instant(raw.start, zone)
    except ValueError as exc:
        problems.append(f"{where}.start: {exc}")
        return None
    try:
        trigger, text = _trigger(name, kind, raw, zone, start)
    except (InvalidSchedule, ValueError) as exc:
        field_name = "start" if isinstance(exc, _StartError) else kind
        problems.append(f"{where}.{field_name}: {exc}")
        return None
    if isinstance(trigger, EveryTrigger):
        start = trigger.start
    never = _never_fires(trigger)
    if never is not None:
        problems.append(f"{where}.{kind}: {never}")
    end = _bounds(raw, kind, trigger, start, options, zone, where, problems)
    if len(problems) > before:
        return None
    # Wrapped only when bounded: a job without end or max_runs keeps its own trigger, and an
    # every job's start is already its grid's origin.
    unbounded = end is None and raw.max_runs is None and (start is None or kind == "every")
    limited = trigger if unbounded else bounded(trigger, start, end, raw.max_runs)
    return JobSpec(
        name=name,
        kind=kind,
        schedule=text,
        timezone=zone,
        trigger=limited,
        args=tuple(raw.args),
        kwargs=dict(raw.kwargs),
        queue=raw.queue,
        catchup=raw.catchup,
        misfire_grace=grace,
        overlap=raw.overlap,
        alert_after=alert_after,
        alert_task=raw.alert_task,
        alert_webhook=raw.alert_webhook,
        start=start,
        end=end,
        max_runs=raw.max_runs,
        calendar=raw.calendar,
        **action,
        **options,
    )


def _action(raw: _JobTable, where: str, problems: list[str]) -> dict[str, Any] | None:
    """What the job sends, as JobSpec fields (task, steps, command, http), or None when the
    table names no single one."""
    actions = [key for key in ACTIONS if getattr(raw, key) is not None]
    if not actions:
        problems.append(f"{where}.task: missing (required)")
        return None
    if len(actions) > 1:
        listed = ", ".join(actions)
        problems.append(f"{where}: needs exactly one of {', '.join(ACTIONS)} (found {listed})")
        return None
    action, written = actions[0], raw.model_fields_set
    before = len(problems)
    for key in _SHELL_KEYS:
        if key in written and getattr(raw, key) is not None and action != "command":
            problems.append(f"{where}.{key}: only a `command` job has a {key}")
    if action in ("task", "chain", "group"):
        for key in _RETRY_KEYS:
            if key in written:
                problems.append(
                    f"{where}.{key}: only a command or http job is retried by the scheduler's "
                    "built-in task (a Celery task retries itself)"
                )
    if action != "task" and (raw.args or raw.kwargs):
        key = "args" if raw.args else "kwargs"
        problems.append(f"{where}.{key}: only a `task` job has {key} (a {action} job has none)")
    found: dict[str, Any] = {}
    if raw.task is not None:
        if not raw.task.strip():
            problems.append(f"{where}.task: must name a Celery task, got {shown(raw.task)}")
        found["task"] = raw.task
    elif raw.command is not None:
        found["task"] = SHELL_TASK
        found["command"] = read_command(raw.command, f"{where}.command", problems)
        found["shell"] = read_shell(raw.cwd, raw.env, raw.timeout, raw.user, where, problems)
    elif raw.http is not None:
        found["task"] = HTTP_TASK
        found["http"] = read_http(raw.http, f"{where}.http", problems)
    else:
        compose: Compose = "chain" if raw.chain is not None else "group"
        steps = read_steps(raw.chain or raw.group or [], compose, f"{where}.{compose}", problems)
        found.update(task=steps[0].task if steps else "", steps=steps, compose=compose)
    return found if len(problems) == before else None


def _bounds(
    raw: _JobTable,
    kind: ScheduleKind,
    trigger: Trigger,
    start: datetime | None,
    options: dict[str, Any],
    zone: zoneinfo.ZoneInfo,
    where: str,
    problems: list[str],
) -> datetime | None:
    """Check jitter, end, max_runs and expires against the schedule; the end instant."""
    jitter = options["jitter"]
    if jitter is not None and jitter.total_seconds() != int(jitter.total_seconds()):
        problems.append(
            f"{where}.jitter: must be whole seconds (slots are), got {format_duration(jitter)}"
        )
    interval = timedelta(seconds=trigger.every_s) if isinstance(trigger, EveryTrigger) else None
    if jitter is not None and interval is not None and jitter >= interval:
        shown_jitter, shown_interval = format_duration(jitter), format_duration(interval)
        problems.append(
            f"{where}.jitter: must be shorter than the interval "
            f"({shown_jitter} >= {shown_interval})"
        )
    if options["expires"] == "next" and kind == "at":
        problems.append(f'{where}.expires: an `at` job has no next slot for "next" to name')
    if raw.max_runs is not None:
        if raw.max_runs < 1:
            problems.append(f"{where}.max_runs: must be at least 1, got {raw.max_runs}")
        if raw.start is None:
            problems.append(f"{where}.max_runs: needs a start (it counts the slots from start)")
    if raw.end is None:
        return None
    try:
        end = _instant(raw.end, zone)
    except ValueError as exc:
        problems.append(f"{where}.end: {exc}")
        return None
    if start is not None and raw.start is not None and end <= start:
        problems.append(
            f"{where}.end: must be after start ({end.isoformat()} <= {start.isoformat()})"
        )
    return end


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
    name: str,
    kind: ScheduleKind,
    raw: _JobTable,
    zone: zoneinfo.ZoneInfo,
    start: datetime | None,
) -> tuple[Trigger, str]:
    if kind == "cron":
        assert raw.cron is not None
        return CronTrigger(compile_cron(raw.cron, name), zone), raw.cron.strip()
    if kind == "every":
        every = parse_duration(raw.every)
        seconds = every.total_seconds()
        if seconds < 1 or seconds != int(seconds):
            raise ValueError(f"must be whole seconds, at least 1s, got {raw.every!r}")
        start = _EPOCH if start is None else start
        if start.microsecond:
            raise _StartError("must be whole seconds")
        return EveryTrigger(int(seconds), start), format_duration(every)
    if kind == "calendar":
        assert raw.calendar is not None
        if start is None:
            raise _StartError("a calendar job needs a start (its first day)")
        return calendar_trigger(raw.calendar, start, zone)
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
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)  # a day: its local midnight
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
