"""`history` and `jobs show`: what was sent, what the workers said of it, and what was not sent.

Both read the history stream (fires and the leader's decisions), each job's reports stream
(what its workers reported) and the missed ranges, merged by scheduler/history.py. Every read
is bounded: `history` looks at the newest 10,000 history entries at most.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from scheduler.cli import common
from scheduler.cli.common import (
    ConfigOption,
    JsonOption,
    connect,
    fail,
    known_jobs,
    load,
    redis_failed,
)
from scheduler.clock import utc
from scheduler.config import Config
from scheduler.describe import schedule_words
from scheduler.drift import DURATION_KEYS, SCHEDULE_KINDS, job_table
from scheduler.durations import format_duration, parse_duration
from scheduler.errors import SchedulerError
from scheduler.history import FAILED, FIRE_KINDS, Composition, detail, instant_text, rows
from scheduler.jobspec import JobSpec
from scheduler.manual import catchup_range
from scheduler.store.reports import read_history, read_job_state, read_ranges, read_reports
from scheduler.store.state import MAX_ENTRIES, Reading, StateStore, Unreadable
from scheduler.triggers import count_slots
from scheduler.views import cell, missed_records, next_slots, table, to_json, unreadable_lines

# A worker may report a fire a little before the CLI that sent it wrote it to history.
_REPORT_SLACK_MS = 60_000
SHOWN_SLOTS = 10
SHOWN_FIRES = 10
HISTORY_COLUMNS = ["slot", "job", "kind", "outcome", "late", "duration", "worker", "detail"]
MISSED_COLUMNS = ["first", "last", "count", "outcome", "reason", "open"]
FIRE_COLUMNS = ["slot", "kind", "outcome", "late", "duration", "worker", "task_id", "detail"]


def _known(cfg: Config, store: StateStore) -> set[str]:
    """The jobs a command may name: the config's and the runtime jobs."""
    return set(known_jobs(cfg, store))


def _job_spec(cfg: Config, store: StateStore, name: str) -> JobSpec | None:
    """The definition of job `name`, wherever it is defined."""
    found = known_jobs(cfg, store).get(name)
    return None if found is None else found[0]


def compositions(specs: Mapping[str, JobSpec]) -> dict[str, Composition]:
    """The chain and group jobs, with their steps' tasks: their fires read as wholes."""
    return {
        name: Composition(spec.compose, tuple(step.task for step in spec.steps))
        for name, spec in specs.items()
        if spec.compose is not None and spec.steps
    }


def collect(
    store: StateStore,
    namespace: str,
    now_s: float,
    *,
    job: str | None = None,
    since_ms: int | None = None,
    limit: int | None = None,
    composed: dict[str, Composition] | None = None,
) -> Reading[list[dict[str, Any]]]:
    """History rows, newest first (of `job`, none before `since_ms`); with `limit`, only that
    many, and only their jobs' reports are read. The fires of `composed` jobs (chains, groups)
    read as wholes, with their steps."""
    entries = read_history(store.client, store.keys, since_ms=since_ms, job=job)
    ranges = read_ranges(store, job)
    found = [r for r in ranges.value if since_ms is None or r.last_s * 1000 >= since_ms]
    # Which fires are shown does not depend on their reports: pick them first, read less.
    shown = rows(namespace, entries.value, {}, found, now_s)
    if limit is not None:
        shown = shown[:limit]
    oldest: dict[str, int] = {}
    for row in shown:
        if row["kind"] in FIRE_KINDS:
            oldest[row["job"]] = min(oldest.get(row["job"], row["at_ms"]), row["at_ms"])
    wanted: dict[str, int | None] = {
        name: max(0, at_ms - _REPORT_SLACK_MS) for name, at_ms in oldest.items()
    }
    if job is not None:
        # One job: all its reports (since `since_ms`), also of runs whose fire has left the
        # history stream all jobs share.
        wanted[job] = None if since_ms is None else max(0, since_ms - _REPORT_SLACK_MS)
    reports = read_reports(store.client, store.keys, wanted)
    result = rows(namespace, entries.value, reports.value, found, now_s, composed)
    if since_ms is not None:
        result = [row for row in result if row["at_ms"] >= since_ms]
    if limit is not None:
        result = result[:limit]
    return Reading(result, entries.unreadable + ranges.unreadable + reports.unreadable)


def history(
    name: Annotated[str | None, typer.Argument(help="Only this job's fires")] = None,
    count: Annotated[int, typer.Option("-n", min=1, max=MAX_ENTRIES, help="How many rows")] = 20,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="ISO 8601 instant (the scheduler's time zone when it has no offset), or a "
            "duration like 2h: that long ago",
        ),
    ] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only failed runs")] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Fires across jobs, newest first, with what the workers reported; missed and skipped
    slots with their reason."""
    cfg = load(config)
    now_s = common.clock.time()
    since_ms = None if since is None else _since_ms(since, now_s, cfg.scheduler.timezone)
    store = connect(cfg)
    try:
        specs = {job: found[0] for job, found in known_jobs(cfg, store).items()}
        if name is not None and name not in specs:
            fail(f"no job named {name!r} in {cfg.path} nor among the runtime jobs", 2)
        found = collect(
            store, cfg.scheduler.namespace, now_s, job=name, since_ms=since_ms,
            limit=None if failed else count, composed=compositions(specs),
        )  # fmt: skip
    except SchedulerError as exc:
        redis_failed(exc)
    selected = [row for row in found.value if not failed or row["outcome"] in FAILED][:count]
    if as_json:
        typer.echo(to_json(missed_records([_public(row) for row in selected], found.unreadable)))
        return
    typer.echo(table([cells for row in selected for cells in _history_cells(row)], HISTORY_COLUMNS))
    for line in unreadable_lines(found.unreadable):
        typer.echo(line)


def jobs_show(
    name: Annotated[str, typer.Argument(help="The job")],
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """One job whole: its definition, state, next slots, last fires and missed ranges."""
    cfg = load(config)
    store = connect(cfg)
    now_s = common.clock.time()
    try:
        job = _job_spec(cfg, store, name) if name in _known(cfg, store) else None
        if job is None:
            fail(f"no job named {name!r} in {cfg.path} nor among the runtime jobs", 2)
        fires = collect(
            store, cfg.scheduler.namespace, now_s, job=name, composed=compositions({name: job})
        )
        state = read_job_state(store.client, store.keys, name)
        paused = store.read_paused([name])
        quarantined = store.read_quarantined([name])
    except SchedulerError as exc:
        redis_failed(exc)
    unreadable: list[Unreadable] = [
        *fires.unreadable, *state.unreadable, *paused.unreadable, *quarantined.unreadable,
    ]  # fmt: skip
    found = quarantined.value.get(name)
    record = {
        "name": name,
        "definition": definition(job),
        "watermark": None if state.value.watermark_s is None else _slot(state.value.watermark_s),
        "last_success": None
        if state.value.last_success_s is None
        else instant_text(round(state.value.last_success_s * 1000)),
        "next_slots": [s.isoformat() for s in next_slots(job, utc(now_s), SHOWN_SLOTS)],
        "fires": [_public(r) for r in fires.value if r["kind"] in FIRE_KINDS][:SHOWN_FIRES],
        # Missed and skipped ranges, open gaps included (collect read them with the fires).
        "missed": [_public(r) for r in fires.value if r["first"] is not None],
        "paused": name in paused.value,
        "pause": state.value.pause,
        "skipped_while_paused": _skipped_while_paused(
            job, state.value.pause, state.value.watermark_s, name in paused.value
        ),
        "quarantined": _quarantine_text(found),
        "unreadable": list(dict.fromkeys(unreadable)),
    }
    if as_json:
        typer.echo(to_json(record))
        return
    typer.echo(_show_text(record))
    for line in unreadable_lines(unreadable):
        typer.echo(line)


def definition(job: JobSpec) -> dict[str, Any]:
    """The whole definition of a job, as written (durations in the config's own form)."""
    return {
        "task": job.task,
        "kind": job.kind,
        "schedule": job.schedule,
        "description": schedule_words(job),
        "timezone": job.timezone.key,
        "args": list(job.args),
        "kwargs": dict(job.kwargs),
        "queue": job.queue,
        "catchup": job.catchup,
        "misfire_grace": format_duration(job.misfire_grace),
        "overlap": job.overlap,
        "alert_after": None if job.alert_after is None else format_duration(job.alert_after),
        "alert_task": job.alert_task,
        "alert_webhook": job.alert_webhook,
        # What issue 12's options set (command, http, chain, priority, jitter...), as a config
        # writes them; absent when unset.
        **{
            key: _written(key, value)
            for key, value in job_table(job.fingerprint()).items()
            if key not in _WRITTEN_ABOVE
        },
    }


def _written(key: str, value: Any) -> Any:
    """A fingerprint's value as the config writes it: durations in seconds become "90s"."""
    if key in DURATION_KEYS and isinstance(value, int | float):
        return format_duration(timedelta(seconds=value))
    return value


# The keys definition() writes itself (and the schedule, under its kind).
_WRITTEN_ABOVE = frozenset(
    {"task", "timezone", "args", "kwargs", "queue", "catchup", "misfire_grace", "overlap",
     "alert_after", "alert_task", "alert_webhook", *SCHEDULE_KINDS}
)  # fmt: skip


def _since_ms(text: str, now_s: float, zone: ZoneInfo) -> int:
    """--since as epoch ms: a duration ("2h", or seconds) means that long before now; an
    instant without an offset is read in `zone`. Exit 2 when it is neither."""
    try:
        return int((now_s - parse_duration(text).total_seconds()) * 1000)
    except ValueError:
        pass
    try:
        instant = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"--since: expected an ISO 8601 instant or a duration like 2h, got {text!r}", 2)
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=zone)
    return int(instant.timestamp() * 1000)


def _slot(slot_s: int) -> str:
    return instant_text(slot_s * 1000).replace(".000Z", "Z")


def _public(row: dict[str, Any]) -> dict[str, Any]:
    # "detail" only where a run gave one (built-in tasks), so other rows keep their shape.
    return {
        key: value
        for key, value in row.items()
        if key != "at_ms" and (key != "detail" or value is not None)
    }


def _cells(row: dict[str, Any]) -> dict[str, Any]:
    """A row as table cells: seconds written short, a range's extent in DETAIL."""
    return {
        **row,
        "late": _seconds_text(row.get("lateness_s")),
        "duration": _seconds_text(row.get("duration_s")),
        "detail": detail(row),
    }


def _history_cells(row: dict[str, Any]) -> list[dict[str, Any]]:
    """A row of the history table, then (a chain or group fire) a row per step under it."""
    steps = [
        {
            "slot": "",
            "job": f"  {step['step']} {step['task']}",
            "kind": "step",
            "late": "",
            "outcome": step["outcome"],
            "duration": _seconds_text(step["duration_s"]),
            "worker": step["worker"],
            "detail": step["error"] or "",
        }
        for step in row.get("steps", ())
    ]
    return [_cells(row), *steps]


def _seconds_text(seconds: float | None) -> str | None:
    """Short: "4ms" under a second, "2.50s" under a minute, else whole units ("3h5m", "-2m";
    a backfill is late)."""
    if seconds is None:
        return None
    if abs(seconds) < 1:
        return f"{round(seconds * 1000)}ms"
    if abs(seconds) < 60:
        return f"{seconds:.2f}s"
    sign = "-" if seconds < 0 else ""
    return sign + format_duration(timedelta(seconds=round(abs(seconds))))


def _skipped_while_paused(
    job: JobSpec, pause: dict[str, Any] | None, watermark_s: int | None, paused: bool
) -> int | None:
    """How many slots the leader skipped since the pause (what `resume --catchup` sends)."""
    if not paused or pause is None:
        return None
    since = pause.get("since")
    if not isinstance(since, int | float):
        return None
    mark = pause.get("watermark")
    bounds = catchup_range(mark if isinstance(mark, int) else None, float(since), watermark_s)
    if bounds is None:
        return 0
    return count_slots(job.trigger, utc(bounds[0]), utc(bounds[1]))


def _show_text(record: dict[str, Any]) -> str:
    definition_ = record["definition"]
    width = max(len(key) for key in definition_) + 1
    lines = [f"{record['name']}"]
    lines += [f"  {key + ':':<{width}} {_plain(value)}" for key, value in definition_.items()]
    pause = record["pause"]
    state = "no"
    if record["paused"]:
        state = "yes"
        if pause is not None:
            since = instant_text(round(float(pause.get("since", 0)) * 1000))
            state = f"paused since {since} ({pause.get('reason') or 'no reason given'})"
        skipped = record["skipped_while_paused"]
        if skipped is not None:
            state += (
                f"; {skipped} slots skipped so far: `resume --catchup` sends them, `resume` "
                "records them as skipped"
            )
    lines += [
        "",
        f"  watermark:    {_plain(record['watermark'])}",
        f"  last success: {_plain(record['last_success'])}",
        f"  paused:       {state}",
        f"  quarantined:  {_plain(record['quarantined'] or 'no')}",
        "",
        "next slots:",
        *([f"  {slot}" for slot in record["next_slots"]] or ["  (no more slots)"]),
        "",
        "last fires:",
        table([_cells(row) for row in record["fires"]], FIRE_COLUMNS)
        if record["fires"]
        else "  (none yet)",
        *_step_lines(record["fires"]),
        *_output_lines(record["fires"]),
        "",
        "missed and skipped:",
        table([_cells(row) for row in record["missed"]], MISSED_COLUMNS)
        if record["missed"]
        else "  (none)",
    ]
    return "\n".join(lines)


def _step_lines(fires: list[dict[str, Any]]) -> list[str]:
    """The steps of each chain or group fire shown, a line each, under the table."""
    lines: list[str] = []
    for row in fires:
        if "steps" not in row:
            continue
        lines += ["", f"steps of {row['slot']} ({row['kind']}, {row['outcome']}):"]
        lines += [
            "  " + "  ".join(
                str(part) for part in (
                    step["step"], step["task"], step["outcome"],
                    _seconds_text(step["duration_s"]), step["worker"], step["error"],
                ) if part is not None
            )
            for step in row["steps"]
        ]  # fmt: skip
    return lines


def _output_lines(fires: list[dict[str, Any]]) -> list[str]:
    """The newest fire's own account of its run (a built-in task's exit code and output),
    indented under the table; nothing for tasks that give none."""
    newest = next((row for row in fires if row.get("detail")), None)
    if newest is None:
        return []
    head = f"output of {newest['slot']} ({newest['outcome']}):"
    return ["", head, *(f"  {line}" for line in str(newest["detail"]).splitlines())]


def _quarantine_text(found: dict[str, Any] | None) -> str | None:
    return None if found is None else f"key {found.get('key')} holds {found.get('found')}"


def _plain(value: object) -> str:
    return cell(value)
