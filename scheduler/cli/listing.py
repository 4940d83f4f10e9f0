"""`scheduler jobs list`: every job, soonest next run first, with what ran and how it went."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

from scheduler.cli import common
from scheduler.cli.common import (
    ConfigOption,
    JsonOption,
    connect,
    known_jobs,
    load,
    redis_failed,
)
from scheduler.cli.watch import IntervalOption, WatchOption, watch
from scheduler.config import Config
from scheduler.errors import SchedulerError
from scheduler.listing import JobFacts, human_row, job_rows
from scheduler.store.alerts import read_alerts
from scheduler.store.state import StateStore
from scheduler.views import table, to_json, unreadable_lines

_COLUMNS = [
    "name", "schedule", "tz", "next", "left", "last", "passed", "outcome", "paused", "source",
]  # fmt: skip
# Rows whose outcome needs an operator's eye, coloured on a terminal only.
_COLOURS = {"failed": typer.colors.RED, "missed": typer.colors.YELLOW}


def jobs_list(
    config: ConfigOption = None,
    as_json: JsonOption = False,
    watching: WatchOption = False,
    interval_s: IntervalOption = 2.0,
) -> None:
    """Every job: schedule in words, next run and time left, last run and how it went."""
    cfg = load(config)
    store = connect(cfg)
    if watching:
        watch(lambda: _render(cfg, store, as_json), interval_s)
        return
    typer.echo(_render(cfg, store, as_json))


def _render(cfg: Config, store: StateStore, as_json: bool) -> str:
    try:
        jobs = known_jobs(cfg, store)
        facts = read_facts(store, sorted(jobs))
    except SchedulerError as exc:
        redis_failed(exc)
    rows = job_rows(jobs, common.clock.time(), facts)
    if as_json:
        return to_json(rows)
    columns = list(_COLUMNS)
    for extra in ("alert", "quarantined"):
        if any(row[extra] for row in rows):
            columns.append(extra)
    lines = table([human_row(row) for row in rows], columns).split("\n")
    if _colour():
        lines[1:] = [
            typer.style(line, fg=_COLOURS[row["outcome"]]) if row["outcome"] in _COLOURS else line
            for line, row in zip(lines[1:], rows, strict=True)
        ]
    return "\n".join([*lines, *unreadable_lines(facts.unreadable)])


def _colour() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def read_facts(store: StateStore, names: list[str]) -> JobFacts:
    last_fires = store.read_last_fires(names)
    outcomes = store.read_outcomes(names)
    paused = store.read_paused(names)
    quarantined = store.read_quarantined(names)
    alerts = read_alerts(store, store.keys, names)
    missed = store.read_missed(1000)
    wanted = set(names)
    last_missed: dict[str, int] = {}
    for record in missed.value:
        job, last = record.get("job"), record.get("last", "")
        if job in wanted:
            last_missed[job] = max(last_missed.get(job, 0), int(last))
    unreadable: list[Any] = [
        *last_fires.unreadable, *outcomes.unreadable, *paused.unreadable,
        *quarantined.unreadable, *alerts.unreadable,
        # A garbled missed range is `jobs missed`'s to show, unless it concerns a listed job.
        *(u for u in missed.unreadable if u.field is None or u.field in wanted),
    ]  # fmt: skip
    return JobFacts(
        last_fires=last_fires.value,
        outcomes=outcomes.value,
        paused=paused.value,
        quarantined=quarantined.value,
        alerts=alerts.value,
        last_missed=last_missed,
        unreadable=unreadable,
    )
