"""`jobs add`, `jobs edit`, `jobs remove`: jobs changed at run time, kept in Redis.

A runtime job is written as a config's job table and validated by the config's own code, so
its errors read like the config's (`runtime: jobs.x.cron: ...`, exit 2). The leader sees a
change within a second; a job of the config's is never shadowed nor changed from here.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from scheduler.cli import common
from scheduler.cli.common import ConfigOption, connect, fail, load, redis_failed
from scheduler.clock import utc
from scheduler.config import Config
from scheduler.durations import parse_duration
from scheduler.errors import SchedulerError
from scheduler.jobspec import JobSpec
from scheduler.runtime import (
    decode,
    delayed_at,
    describe,
    edited,
    json_option,
    normalized,
    validate,
)
from scheduler.store.runtime import MAX_RUNTIME_JOBS, Expect, RuntimeJobStore

Text = str | None
TaskOpt = Annotated[Text, typer.Option("--task", help="The Celery task to send.")]
CronOpt = Annotated[Text, typer.Option("--cron", help="Cron expression (H allowed).")]
EveryOpt = Annotated[Text, typer.Option("--every", help='Interval, e.g. "90s", "1h".')]
AtOpt = Annotated[Text, typer.Option("--at", help="One-off at this ISO 8601 instant.")]
InOpt = Annotated[Text, typer.Option("--in", help='One-off this long from now, e.g. "10m".')]
ArgsOpt = Annotated[Text, typer.Option("--args", help="Positional arguments: a JSON list.")]
KwargsOpt = Annotated[Text, typer.Option("--kwargs", help="Keyword arguments: a JSON object.")]
QueueOpt = Annotated[Text, typer.Option("--queue", help='Celery queue (default "celery").')]
ZoneOpt = Annotated[Text, typer.Option("--timezone", help="Time zone of the schedule.")]
CatchupOpt = Annotated[Text, typer.Option("--catchup", help="all | latest | none")]
GraceOpt = Annotated[Text, typer.Option("--misfire-grace", help="How late a slot may fire.")]
StartOpt = Annotated[Text, typer.Option("--start", help="Start of an --every grid.")]
OverlapOpt = Annotated[Text, typer.Option("--overlap", help="allow | skip")]
AlertAfterOpt = Annotated[Text, typer.Option("--alert-after", help="Dead man's switch.")]
AlertTaskOpt = Annotated[Text, typer.Option("--alert-task", help="Task the alert sends.")]
AlertHookOpt = Annotated[Text, typer.Option("--alert-webhook", help="URL the alert POSTs.")]
ReplaceOpt = Annotated[bool, typer.Option("--replace", help="Overwrite a runtime job.")]


def jobs_add(
    name: str,
    task: TaskOpt = None,
    cron: CronOpt = None,
    every: EveryOpt = None,
    at: AtOpt = None,
    in_: InOpt = None,
    args: ArgsOpt = None,
    kwargs: KwargsOpt = None,
    queue: QueueOpt = None,
    timezone: ZoneOpt = None,
    catchup: CatchupOpt = None,
    misfire_grace: GraceOpt = None,
    start: StartOpt = None,
    overlap: OverlapOpt = None,
    alert_after: AlertAfterOpt = None,
    alert_task: AlertTaskOpt = None,
    alert_webhook: AlertHookOpt = None,
    replace: ReplaceOpt = False,
    config: ConfigOption = None,
) -> None:
    """Add a job at run time (kept in Redis; the leader runs it within a second)."""
    cfg = load(config)
    if name in cfg.jobs:
        fail(f"job {name!r} is defined in {cfg.path}: a runtime job may not shadow it", 2)
    table = _options(
        task=task, cron=cron, every=every, at=at, in_=in_, args=args, kwargs=kwargs, queue=queue,
        timezone=timezone, catchup=catchup, misfire_grace=misfire_grace, start=start,
        overlap=overlap, alert_after=alert_after, alert_task=alert_task,
        alert_webhook=alert_webhook,
    )  # fmt: skip
    spec, table = _checked(cfg, name, table, one_off=at is not None or in_ is not None)
    store = _store(cfg)
    try:
        if not replace and store.count() >= MAX_RUNTIME_JOBS:
            fail(f"there are {MAX_RUNTIME_JOBS} runtime jobs already, the most there may be", 2)
        result = store.put(name, table, Expect.ANY if replace else Expect.ABSENT)
    except SchedulerError as exc:
        redis_failed(exc)
    if not result.done:
        fail(f"runtime job {name!r} exists: `jobs edit` it, or add it with --replace", 2)
    now = utc(common.clock.time())
    typer.echo(
        f"{'replaced' if result.existed else 'added'} job {name} ({describe(spec, table, now)})"
    )


def jobs_edit(
    name: str,
    task: TaskOpt = None,
    cron: CronOpt = None,
    every: EveryOpt = None,
    at: AtOpt = None,
    in_: InOpt = None,
    args: ArgsOpt = None,
    kwargs: KwargsOpt = None,
    queue: QueueOpt = None,
    timezone: ZoneOpt = None,
    catchup: CatchupOpt = None,
    misfire_grace: GraceOpt = None,
    start: StartOpt = None,
    overlap: OverlapOpt = None,
    alert_after: AlertAfterOpt = None,
    alert_task: AlertTaskOpt = None,
    alert_webhook: AlertHookOpt = None,
    config: ConfigOption = None,
) -> None:
    """Change the given fields of a runtime job (a schedule option replaces its schedule)."""
    cfg = load(config)
    _not_in_config(cfg, name)
    changes = _options(
        task=task, cron=cron, every=every, at=at, in_=in_, args=args, kwargs=kwargs, queue=queue,
        timezone=timezone, catchup=catchup, misfire_grace=misfire_grace, start=start,
        overlap=overlap, alert_after=alert_after, alert_task=alert_task,
        alert_webhook=alert_webhook,
    )  # fmt: skip
    if not changes:
        fail("jobs edit: give at least one option to change (see --help)", 2)
    store = _store(cfg)
    current = _current(store, name)
    try:
        table = decode(name, current)
    except ValueError as exc:
        fail(f"{exc}: remove it, or add it again with --replace", 2)
    spec, table = _checked(cfg, name, edited(table, changes), one_off="at" in changes)
    try:
        result = store.put(name, table, Expect.EQUAL, current)
    except SchedulerError as exc:
        redis_failed(exc)
    if not result.done:
        fail(f"runtime job {name!r} changed or went while it was edited; try again", 1)
    now = utc(common.clock.time())
    typer.echo(f"changed job {name} ({describe(spec, table, now)})")


def jobs_remove(name: str, config: ConfigOption = None) -> None:
    """Remove a runtime job (the leader stops it within a second)."""
    cfg = load(config)
    _not_in_config(cfg, name)
    store = _store(cfg)
    try:
        result = store.remove(name)
    except SchedulerError as exc:
        redis_failed(exc)
    if not result.done:
        fail(f"no runtime job named {name!r}", 2)
    typer.echo(f"removed job {name}")


def _options(
    *, in_: str | None, args: str | None, kwargs: str | None, **given: str | None
) -> dict[str, Any]:
    """The job table the options given describe (options left out are not in it)."""
    table: dict[str, Any] = {key: value for key, value in given.items() if value is not None}
    try:
        if args is not None:
            table["args"] = json_option(args, "--args", list)
        if kwargs is not None:
            table["kwargs"] = json_option(kwargs, "--kwargs", dict)
    except ValueError as exc:
        fail(str(exc), 2)
    if in_ is not None:
        if "at" in table:
            fail("--in: give --at or --in, not both", 2)
        try:
            delay = parse_duration(in_)
        except ValueError as exc:
            fail(f"--in: {exc}", 2)
        if delay.total_seconds() < 1:
            fail(f"--in: must be at least 1s, got {in_!r}", 2)
        table["at"] = delayed_at(common.clock.time(), delay).isoformat()
    return table


def _checked(
    cfg: Config, name: str, table: dict[str, Any], *, one_off: bool
) -> tuple[JobSpec, dict[str, Any]]:
    """The job and the table to store, or exit 2 with the validator's lines."""
    settings = cfg.scheduler
    spec, problems = validate(name, table, settings.timezone, settings.namespace)
    if spec is None:
        for problem in problems:
            typer.echo(problem, err=True)
        raise typer.Exit(2)
    stored = normalized(table, spec)
    if one_off and spec.trigger.next_slot(utc(common.clock.time())) is None:
        when = stored.get("at")
        fail(f"--at: {when} is not in the future: the job would never fire", 2)
    return spec, stored


def _not_in_config(cfg: Config, name: str) -> None:
    if name in cfg.jobs:
        fail(f"job {name!r} is defined in {cfg.path}: edit the file and reload", 2)


def _store(cfg: Config) -> RuntimeJobStore:
    state = connect(cfg)
    return RuntimeJobStore(state.client, state.keys)


def _current(store: RuntimeJobStore, name: str) -> bytes:
    try:
        current = store.get(name)
    except SchedulerError as exc:
        redis_failed(exc)
    if current is None:
        fail(f"no runtime job named {name!r}", 2)
    return current
