"""`scheduler run` and `scheduler validate`: the daemon itself, and the offline config check."""

from __future__ import annotations

import gc
import logging
import signal
import socket
import sys
from typing import Annotated

import typer

from scheduler.cli.common import ConfigOption, load
from scheduler.clock import SystemClock


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

    cfg = load(config)
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


def validate(config: ConfigOption = None) -> None:
    """Check a config offline: exit 0, or 2 with one line per problem."""
    cfg = load(config)
    typer.echo(f"{cfg.path}: ok, {len(cfg.jobs)} jobs, config hash {cfg.hash}")
