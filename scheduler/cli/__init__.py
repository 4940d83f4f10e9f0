"""`scheduler`: the command line. Thin: parse, load config, configure logging, call one thing.

One module per group of commands; this one only assembles them. Only `run` needs Celery and
kombu (through `scheduler.node`), and `trigger`/`backfill` kombu: they import them
themselves, so the other commands start without them.
"""

from __future__ import annotations

import typer

from scheduler.cli import (
    about,
    control,
    daemon,
    history,
    importing,
    jobs,
    listing,
    plan,
    runtime,
    schema,
    status,
)
from scheduler.zones import use_pinned_tzdata

app = typer.Typer(
    help="A highly available cron for Celery.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    # Help texts are plain: "[default: now]" is text to show, not markup to strip.
    rich_markup_mode=None,
)
app.callback()(about.app_options)
jobs_app = typer.Typer(help="List, inspect, add and drive jobs.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")

# The daemon and its offline check.
app.command()(daemon.run)
app.command()(daemon.validate)
app.command()(schema.schema)
# Reading: what runs when, what ran, who leads, what a new config would change.
app.command()(status.status)
app.command()(history.history)
app.command("next")(jobs.next_runs)
app.command()(plan.plan)
jobs_app.command("list")(listing.jobs_list)
jobs_app.command("show")(history.jobs_show)
jobs_app.command("missed")(jobs.jobs_missed)
# Driving: fires and pauses an operator asks for.
app.command()(control.trigger)
app.command()(control.backfill)
app.command()(control.pause)
app.command()(control.resume)
jobs_app.command("pause")(control.pause)
jobs_app.command("resume")(control.resume)
# Jobs added at run time, kept in Redis.
jobs_app.command("add")(runtime.jobs_add)
jobs_app.command("edit")(runtime.jobs_edit)
jobs_app.command("remove")(runtime.jobs_remove)
# Migration: schedules users already have, printed as TOML jobs.
import_app = typer.Typer(
    help="Print TOML jobs for a celery beat schedule or a crontab.", no_args_is_help=True
)
app.add_typer(import_app, name="import")
import_app.command("beat")(importing.import_beat)
import_app.command("crontab")(importing.import_crontab)


def main() -> None:
    use_pinned_tzdata()
    app()
