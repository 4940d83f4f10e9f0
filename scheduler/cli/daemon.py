"""`scheduler run` and `scheduler validate`: the daemon itself, and the offline config check."""

from __future__ import annotations

import gc
import signal
import socket
from typing import Annotated

import typer

from scheduler import logs
from scheduler.cli.common import ConfigOption, load
from scheduler.clock import SystemClock
from scheduler.errors import ConfigError
from scheduler.logs import Format, Level


def _choice(value: str, choices: type[Level] | type[Format]) -> str:
    """The member of `choices` `value` names (any case), or a one-line usage error (exit 2)."""
    for member in choices:
        if value.casefold() == member.value.casefold():
            return member.value
    raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}")


def _log_level(value: str) -> Level:
    return Level(_choice(value, Level))


def _log_format(value: str) -> Format:
    return Format(_choice(value, Format))


def run(
    config: ConfigOption = None,
    node_id: Annotated[
        str | None, typer.Option("--node-id", help="This node's name [default: host name]")
    ] = None,
    log_level: Annotated[
        Level,
        typer.Option(
            "--log-level",
            parser=_log_level,
            metavar="|".join(Level),
            help="The least severe records logged (any case)",
        ),
    ] = Level.INFO,
    log_format: Annotated[
        Format,
        typer.Option(
            "--log-format",
            parser=_log_format,
            metavar="|".join(Format),
            help="plain: a line a record, with syslog priorities under journald; "
            "json: a JSON object a line",
        ),
    ] = Format.plain,
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

    cfg = load(config)
    # What is loaded so far lives as long as the process: spare the collector walking it again
    # on every full pass (the take-over, and every tick after).
    gc.freeze()
    logs.configure(log_level.value, log_format.value)
    node = Node(cfg, node_id or socket.gethostname(), SystemClock(clock_offset_s))
    node.check_own_deadline = not no_deadline_check
    signal.signal(signal.SIGTERM, lambda *_: node.request_stop())
    signal.signal(signal.SIGINT, lambda *_: node.request_stop())
    signal.signal(signal.SIGHUP, lambda *_: node.request_reload())
    try:
        node.run()
    except ConfigError as exc:  # raised before anything started: http_listen cannot be bound
        for problem in exc.problems:
            typer.echo(problem, err=True)
        raise typer.Exit(2) from None


def validate(config: ConfigOption = None) -> None:
    """Check a config offline: exit 0, or 2 with one line per problem."""
    cfg = load(config)
    typer.echo(f"{cfg.path}: ok, {len(cfg.jobs)} jobs, config hash {cfg.hash}")
