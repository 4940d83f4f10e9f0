"""`scheduler import beat` and `scheduler import crontab`: schedules users already have, printed
as this project's TOML jobs. The TOML goes to stdout, each problem as one line to stderr; exit
2 when nothing could be imported, 0 otherwise (what was left out is a comment in the output).

The importers (and croniter, and Celery for beat) are imported when a command runs, so the
other commands start without them.
"""

from __future__ import annotations

import importlib
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from scheduler.cli.common import fail
from scheduler.files import CONFIG_MAX_BYTES, FileProblem, read_text_bounded

if TYPE_CHECKING:
    from scheduler.importers.toml_text import ImportResult

SinceOption = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="Compare schedules (with celery's, croniter's) from this ISO 8601 instant "
        "[default: now]",
    ),
]
_CHECK = "Put them under a [scheduler] table (or in an included file); `scheduler validate` checks."


def import_beat(
    app_spec: Annotated[
        str,
        typer.Argument(
            metavar="MODULE:APP",
            help="Your Celery app, as for `celery -A` (e.g. proj.celery:app). This imports "
            "that module, running its code: the one place the scheduler runs yours.",
        ),
    ],
    since: SinceOption = None,
) -> None:
    """Print a Celery app's beat_schedule as TOML jobs (imports your app module to read it)."""
    start = _since(since)
    app = _celery_app(app_spec)
    from scheduler.importers.beat import import_beat as translate  # noqa: PLC0415  (Celery)

    result = translate(app, start)
    entries = len(app.conf.beat_schedule or {})
    _print(result, f"`scheduler import beat {app_spec}`: {entries} beat entries")


def import_crontab(
    file: Annotated[Path, typer.Argument(help="A crontab (crontab -l > FILE), or /etc/cron.d/*")],
    user_field: Annotated[
        bool,
        typer.Option(
            "--user-field",
            help="Lines name a user after the schedule (/etc/crontab, /etc/cron.d style).",
        ),
    ] = False,
    since: SinceOption = None,
) -> None:
    """Print a crontab's lines as TOML shell jobs, each run as cron ran it: through /bin/sh -c."""
    start = _since(since)
    try:
        text = read_text_bounded(file, CONFIG_MAX_BYTES, "crontab")
    except FileProblem as exc:
        fail(str(exc), 2)
    from scheduler.importers.crontab import import_crontab as translate  # noqa: PLC0415

    result = translate(text, file.name, user_field, start)
    header = [
        f"`scheduler import crontab{' --user-field' if user_field else ''} {file.name}`",
        "cron ran these in the host's local time (or CRON_TZ); here a job without `timezone` "
        "runs in [scheduler].timezone",
        "cron starts each command with PATH=/usr/bin:/bin; set PATH in `env` if one relies on it",
    ]
    _print(result, *header)


def _print(result: ImportResult, *header: str) -> None:
    from scheduler.importers.toml_text import render  # noqa: PLC0415

    for problem in result.problems:
        typer.echo(problem, err=True)
    if not result.jobs:
        typer.echo(render(result, ["Imported by " + header[0], "nothing could be imported"]))
        raise typer.Exit(2)
    count = len(result.jobs)
    lines = [f"Imported by {header[0]}, {count} job{'' if count == 1 else 's'}", *header[1:]]
    lines.append(_CHECK)
    typer.echo(render(result, lines), nl=False)


def _since(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--since: expected an ISO 8601 instant like 2026-12-01T09:00:00Z, got {text!r}", 2)
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


def _celery_app(spec: str) -> Any:  # noqa: RET503  (fail() never returns)
    """The app ``spec`` names, found the way ``celery -A`` finds it (the current directory is
    importable; without ``:APP`` the module's ``app`` or ``celery``)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name:
        fail(f"expected MODULE:APP like proj.celery:app, got {spec!r}", 2)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    # The user's module may raise anything while it runs; it is one line and exit 2.
    except Exception as exc:  # noqa: BLE001
        fail(f"cannot import {module_name}: {type(exc).__name__}: {exc}", 2)
    candidates = [attribute] if attribute else ["app", "celery"]
    for name in candidates:
        app = module
        try:
            for part in name.split("."):
                app = getattr(app, part)
        except AttributeError:
            continue
        if hasattr(app, "conf") and hasattr(app, "send_task"):
            return app
        fail(f"{spec}: {name} is a {type(app).__name__}, not a Celery app", 2)
    fail(f"{module_name} has no {' or '.join(candidates)} (name the app: {module_name}:APP)", 2)
