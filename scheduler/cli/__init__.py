"""`scheduler`: the command line. Thin: parse, load config, configure logging, call one thing.

One module per group of commands; this one only assembles them. Only `run` needs Celery and
kombu (through `scheduler.node`), so it imports the node itself: the other commands start
without importing them.
"""

from __future__ import annotations

import typer

from scheduler.cli import daemon, jobs, listing, status
from scheduler.zones import use_pinned_tzdata

app = typer.Typer(
    help="A highly available cron for Celery.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
jobs_app = typer.Typer(help="List and drive jobs.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")

app.command()(daemon.run)
app.command()(daemon.validate)
app.command("next")(jobs.next_runs)
app.command()(status.status)
jobs_app.command("list")(listing.jobs_list)
jobs_app.command("pause")(jobs.jobs_pause)
jobs_app.command("resume")(jobs.jobs_resume)
jobs_app.command("missed")(jobs.jobs_missed)


def main() -> None:
    use_pinned_tzdata()
    app()
