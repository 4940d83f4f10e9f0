"""The top-level options: `scheduler --version` (and the app's own help text)."""

from __future__ import annotations

from typing import Annotated

import typer

from scheduler import __version__


def show_version(value: bool) -> None:
    """`--version`: print `scheduler <version>` and stop, before any command runs."""
    if value:
        typer.echo(f"scheduler {__version__}")
        raise typer.Exit(0)


VersionOption = Annotated[
    bool,
    typer.Option(
        "--version",
        callback=show_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
]


def app_options(version: VersionOption = False) -> None:
    """A highly available cron for Celery."""
