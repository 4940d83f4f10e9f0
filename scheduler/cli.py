"""`scheduler`: the command line. Thin: parse, load config, configure logging, call one thing.

Only `run` needs Celery and kombu (through `scheduler.node`), so it imports the node itself:
the other commands (`validate`, `next`, ...) start without importing them.
"""

from __future__ import annotations

import gc
import json
import logging
import signal
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from scheduler import __version__
from scheduler.clock import Clock, SystemClock
from scheduler.config import Config, load_config
from scheduler.connections import redact_url, redis_client, same_redis, tzdata_version
from scheduler.errors import ConfigError, SchedulerError
from scheduler.lease import read_holder
from scheduler.quarantine import names
from scheduler.store.failures import redis_errors
from scheduler.store.keys import Keys
from scheduler.store.state import StateStore
from scheduler.views import (
    cell,
    job_rows,
    missed_records,
    next_slots,
    status_record,
    table,
    to_json,
    unreadable_lines,
)
from scheduler.zones import use_pinned_tzdata

app = typer.Typer(
    help="A highly available cron for Celery.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
jobs_app = typer.Typer(help="List and drive jobs.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Config file [default: $SCHEDULER_CONFIG, then /etc/scheduler/scheduler.toml]",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"scheduler: {message}", err=True)
    raise typer.Exit(code)


def _config(path: Path | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(problem, err=True)
        raise typer.Exit(2) from None


def _store(config: Config) -> StateStore:
    url = config.scheduler.redis_url
    client = redis_client(url)
    try:
        with redis_errors("ping"):
            client.ping()
    except SchedulerError as exc:
        _fail(f"cannot reach Redis at {redact_url(url)}: {exc}", 1)
    return StateStore(client, Keys(config.scheduler.namespace))


@app.command()
def run(
    config: ConfigOption = None,
    node_id: Annotated[
        str | None, typer.Option("--node-id", help="This node's name [default: host name]")
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING")] = "INFO",
    clock_offset_s: Annotated[
        float, typer.Option("--clock-offset", hidden=True, help="Test knob: skew this node's clock")
    ] = 0.0,
    no_deadline_check: Annotated[
        bool,
        typer.Option(
            "--no-deadline-check",
            hidden=True,
            help="Test knob: claim past this node's own lease deadline, so that only the "
            "fence in Redis stops a stale leader",
        ),
    ] = False,
) -> None:
    """Run one node in the foreground until SIGTERM or SIGINT (SIGHUP reloads the config)."""
    from scheduler.node import Node  # noqa: PLC0415  (imports Celery and kombu)

    cfg = _config(config)
    # What is loaded so far lives as long as the process: spare the collector walking it again
    # on every full pass (the take-over, and every tick after).
    gc.freeze()
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    node = Node(cfg, node_id or socket.gethostname(), SystemClock(clock_offset_s))
    node.check_own_deadline = not no_deadline_check
    signal.signal(signal.SIGTERM, lambda *_: node.request_stop())
    signal.signal(signal.SIGINT, lambda *_: node.request_stop())
    signal.signal(signal.SIGHUP, lambda *_: node.request_reload())
    node.run()


@app.command()
def validate(config: ConfigOption = None) -> None:
    """Check a config: exit 0, or 2 with one line per problem."""
    cfg = _config(config)
    typer.echo(f"{cfg.path}: ok, {len(cfg.jobs)} jobs, config hash {cfg.hash}")


# Wall time for `jobs list`'s next runs; a test swaps in its own clock.
clock: Clock = SystemClock()


@jobs_app.command("list")
def jobs_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every job: task, schedule, time zone, next run, last run and outcome, paused."""
    cfg = _config(config)
    store = _store(cfg)
    names = sorted(cfg.jobs)
    try:
        last_fires = store.read_last_fires(names)
        outcomes = store.read_outcomes(names)
        paused = store.read_paused(names)
        quarantined = store.read_quarantined(names)
    except SchedulerError as exc:
        _fail(f"Redis error: {exc}", 1)
    unreadable = [
        *last_fires.unreadable, *outcomes.unreadable, *paused.unreadable,
        *quarantined.unreadable,
    ]  # fmt: skip
    rows = job_rows(
        cfg, clock.time(), last_fires.value, outcomes.value, paused.value, quarantined.value,
        unreadable,
    )  # fmt: skip
    if as_json:
        typer.echo(to_json(rows))
        return
    columns = ["name", "task", "schedule", "timezone", "next_run", "last_run", "outcome", "paused"]
    if any(row["quarantined"] for row in rows):
        columns.append("quarantined")
    typer.echo(table(rows, columns))
    for line in unreadable_lines(unreadable):
        typer.echo(line)


def _set_paused(config: Path | None, name: str, paused: bool) -> None:
    cfg = _config(config)
    if name not in cfg.jobs:
        _fail(f"no job named {name!r} in {cfg.path}", 2)
    try:
        _store(cfg).set_paused(name, paused)
    except SchedulerError as exc:
        _fail(f"Redis error: {exc}", 1)
    typer.echo(f"{name}: {'paused' if paused else 'resumed'}")


@jobs_app.command("pause")
def jobs_pause(name: str, config: ConfigOption = None) -> None:
    """Stop sending a job's slots (they are counted as skipped) until it is resumed."""
    _set_paused(config, name, True)


@jobs_app.command("resume")
def jobs_resume(name: str, config: ConfigOption = None) -> None:
    """Send a paused job's slots again, from the next one."""
    _set_paused(config, name, False)


@jobs_app.command("missed")
def jobs_missed(
    config: ConfigOption = None,
    count: Annotated[int, typer.Option("-n", min=1, help="How many ranges")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The newest missed ranges: job, first and last slot, count, reason."""
    cfg = _config(config)
    try:
        missed = _store(cfg).read_missed(count)
    except SchedulerError as exc:
        _fail(f"Redis error: {exc}", 1)
    if as_json:
        typer.echo(to_json(missed_records(missed.value, missed.unreadable)))
        return
    typer.echo(table(missed.value, ["job", "first", "last", "count", "reason"]))
    for line in unreadable_lines(missed.unreadable):
        typer.echo(line)


@app.command("next")
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
    cfg = _config(config)
    job = cfg.jobs.get(name)
    if job is None:
        _fail(f"no job named {name!r} in {cfg.path}", 2)
    start = datetime.now(UTC)
    if after is not None:
        try:
            start = datetime.fromisoformat(after.replace("Z", "+00:00"))
        except ValueError:
            _fail(f"--after: expected an ISO 8601 instant, got {after!r}", 2)
        if start.tzinfo is None:
            start = start.replace(tzinfo=job.timezone)
    slots = [slot.isoformat() for slot in next_slots(job, start, count)]
    typer.echo(json.dumps(slots) if as_json else "\n".join(slots) or "(no more slots)")


@app.command()
def status(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Leader, fencing token, lease left, and every node seen recently."""
    cfg = _config(config)
    store = _store(cfg)
    try:
        holder = read_holder(store.client, store.keys)
        settings = cfg.scheduler
        outbox = store.read_outbox_size()
        nodes = store.read_nodes()
        now_s = store.server_time()
        state_lost = store.read_state_lost()
        quarantined = store.read_quarantined()
    except SchedulerError as exc:
        _fail(f"Redis error: {exc}", 1)
    pending = outbox.value
    record = status_record(
        holder,
        nodes.value,
        now_s,
        {
            "namespace": settings.namespace,
            "config_hash": cfg.hash,
            "tzdata": tzdata_version(),
            "version": __version__,
            "broker": redact_url(settings.effective_broker_url),
            "atomic_enqueue": same_redis(settings.redis_url, settings.effective_broker_url),
            "outbox": {
                "pending": pending,
                "max": settings.outbox_max,
                "full": pending is not None and pending >= settings.outbox_max,
            },
            "state_lost": state_lost.value,
            "quarantined": quarantined.value,
            "unreadable": [
                *outbox.unreadable, *nodes.unreadable, *state_lost.unreadable,
                *quarantined.unreadable,
            ],
        },
    )  # fmt: skip
    if as_json:
        typer.echo(to_json(record))
        return
    _print_status(record)


def _print_status(record: dict[str, Any]) -> None:
    leader = record["leader"] or "(none)"
    typer.echo(
        f"leader: {leader}  token: {record['fencing_token'] or '-'}  "
        f"lease left: {record['lease_left_ms'] or '-'} ms  "
        f"config: {record['config_hash']}  tzdata: {record['tzdata']}"
    )
    outbox = record["outbox"]
    if not record["atomic_enqueue"]:
        full = "  FULL: slots are being recorded as missed" if outbox["full"] else ""
        pending = "?" if outbox["pending"] is None else outbox["pending"]
        typer.echo(f"outbox: {pending} of {outbox['max']} waiting for the broker{full}")
    if record["state_lost"] is not None:
        noticed = cell(record["state_lost"].get("noticed_at"))
        typer.echo(f"STATE LOST: Redis lost its data; noticed {noticed}")
    for warning in record["warnings"]:
        typer.echo(f"WARNING: {warning}")
    alike: dict[tuple[str, str], list[str]] = {}
    for job, found in sorted(record["quarantined"].items()):
        alike.setdefault((cell(found.get("key")), cell(found.get("found"))), []).append(cell(job))
    for (key, found), jobs in alike.items():
        who = jobs[0] if len(jobs) == 1 else f"{len(jobs)} jobs ({names(jobs)})"
        typer.echo(f"QUARANTINED: {who}: key {key} holds {found} (not fired until it is fixed)")
    columns = [
        "node_id", "host", "pid", "leader", "clock_offset_ms", "clock_ok", "config_hash",
        "seen_ago_s",
    ]  # fmt: skip
    typer.echo(table(record["nodes"], columns))
    for line in unreadable_lines(record["unreadable"]):
        typer.echo(line)


def main() -> None:
    use_pinned_tzdata()
    app()
