"""What every command shares: the common options, loading the config, reaching Redis, and
failing with one line and the documented exit code (1 runtime, 2 usage or config)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn
from zoneinfo import ZoneInfo

import typer

from scheduler.clock import Clock, SystemClock
from scheduler.config import Config, load_config
from scheduler.connections import redact_url, redis_client
from scheduler.errors import ConfigError, SchedulerError
from scheduler.jobspec import JobSpec
from scheduler.runtime import Source, all_jobs
from scheduler.store.failures import redis_errors
from scheduler.store.keys import Keys
from scheduler.store.runtime import load_runtime_jobs
from scheduler.store.state import StateStore

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Config file [default: $SCHEDULER_CONFIG, then /etc/scheduler/scheduler.toml]",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]

# Wall time for what the read commands show (next runs, "12 s ago"); a test swaps in its own.
clock: Clock = SystemClock()


def fail(message: str, code: int) -> NoReturn:
    typer.echo(f"scheduler: {message}", err=True)
    raise typer.Exit(code)


def load(path: Path | None) -> Config:
    """The config, or exit 2 with one line per problem."""
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(problem, err=True)
        raise typer.Exit(2) from None


def connect(config: Config) -> StateStore:
    """The deployment's Redis, or exit 1 with one line naming it (never its password)."""
    url = config.scheduler.redis_url
    client = redis_client(url)
    try:
        with redis_errors("ping"):
            client.ping()
    except SchedulerError as exc:
        fail(f"cannot reach Redis at {redact_url(url)}: {exc}", 1)
    return StateStore(client, Keys(config.scheduler.namespace))


def redis_failed(exc: SchedulerError) -> NoReturn:
    fail(f"Redis error: {exc}", 1)


def parse_instant(text: str, option: str, zone: ZoneInfo | None = None) -> datetime:
    """An ISO 8601 instant given on the command line; without an offset it is read in `zone`
    (UTC when none). Exit 2 naming the option when it is not one."""
    try:
        instant = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option}: expected an ISO 8601 instant, got {text!r}", 2)
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=zone or UTC)
    return instant


def known_jobs(cfg: Config, store: StateStore) -> dict[str, tuple[JobSpec, Source]]:
    """Every job a command may name: the config's, and the runtime jobs in Redis (a config
    job wins a name both have). A runtime job that no longer validates is named on stderr."""
    try:
        runtime = load_runtime_jobs(store, store.keys, cfg)
    except SchedulerError as exc:
        redis_failed(exc)
    for problem in runtime.problems:
        typer.echo(f"scheduler: runtime job skipped: {problem}", err=True)
    return all_jobs(cfg, runtime.jobs)


def find_job(cfg: Config, name: str, store: StateStore | None = None) -> JobSpec:
    """Job `name` of the config or, when the config has none, of the runtime jobs (which
    needs Redis); exit 2 when neither has it."""
    job = cfg.jobs.get(name)
    if job is not None:
        return job
    found = known_jobs(cfg, store or connect(cfg)).get(name)
    if found is None:
        fail(f"no job named {name!r} in {cfg.path} nor among the runtime jobs", 2)
    return found[0]
