"""The job read commands `jobs missed` and `next` (`jobs list` is in `listing`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from scheduler.cli.common import (
    ConfigOption,
    JsonOption,
    connect,
    fail,
    find_job,
    load,
    redis_failed,
)
from scheduler.errors import SchedulerError
from scheduler.views import missed_records, next_slots, table, to_json, unreadable_lines


def jobs_missed(
    config: ConfigOption = None,
    count: Annotated[int, typer.Option("-n", min=1, help="How many ranges")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The newest missed ranges: job, first and last slot, count, reason."""
    cfg = load(config)
    try:
        missed = connect(cfg).read_missed(count)
    except SchedulerError as exc:
        redis_failed(exc)
    if as_json:
        typer.echo(to_json(missed_records(missed.value, missed.unreadable)))
        return
    typer.echo(table(missed.value, ["job", "first", "last", "count", "reason"]))
    for line in unreadable_lines(missed.unreadable):
        typer.echo(line)


def next_runs(
    name: str,
    config: ConfigOption = None,
    count: Annotated[int, typer.Option("-n", min=1, max=10_000, help="How many slots")] = 5,
    after: Annotated[
        str | None, typer.Option("--after", help="ISO 8601 instant [default: now]")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The next N slots of a job, in its time zone."""
    cfg = load(config)
    job = find_job(cfg, name)
    start = datetime.now(UTC)
    if after is not None:
        try:
            start = datetime.fromisoformat(after.replace("Z", "+00:00"))
        except ValueError:
            fail(f"--after: expected an ISO 8601 instant, got {after!r}", 2)
        if start.tzinfo is None:
            start = start.replace(tzinfo=job.timezone)
    slots = [slot.isoformat() for slot in next_slots(job, start, count)]
    typer.echo(json.dumps(slots) if as_json else "\n".join(slots) or "(no more slots)")
