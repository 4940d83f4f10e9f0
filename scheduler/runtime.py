"""Jobs added at run time (`jobs add`): their stored tables, validated by the config's own
code, merged with the config's jobs. Pure: the values come from Redis (store/runtime.py) and
the config from its file; nothing here does I/O.

A runtime job never shadows a config job: when a config gains a runtime job's name, the
config's job runs and the runtime one is named as shadowed. A stored value that does not
validate (written by hand, or refused by a newer config's rules) is set aside with one line
naming it; every other job runs.
"""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from scheduler.config import Config
from scheduler.durations import shown
from scheduler.jobspec import JOB_NAME, SCHEDULE_KINDS, JobSpec, _JobTable, build_job

# What error lines name as the "file" of a runtime job: "runtime: jobs.x.cron: ...".
RUNTIME_PATH = Path("runtime")
Source = Literal["config", "runtime"]
# The keys of a stored job table, as a config writes them.
TABLE_KEYS = tuple(_JobTable.model_fields)
SCHEDULE_KEYS = SCHEDULE_KINDS
# No table an operator writes comes near this; a longer value is reported, never parsed.
MAX_TABLE_BYTES = 64 * 1024
_SHOWN_CHARS = 60


@dataclass(slots=True)
class RuntimeJobs:
    """The runtime jobs as read: the valid ones, the stored table of each (shadowed ones
    too), the names a config job shadows, and one line per value that could not be used.
    `readable` is False when the hash itself could not be read (a wrong type)."""

    jobs: dict[str, JobSpec] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    shadowed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    readable: bool = True


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a job's name, worded as the config words it, or None."""
    if JOB_NAME.fullmatch(name):
        return None
    quoted = json.dumps(name[:80] + ("..." if len(name) > 80 else ""))
    return (
        f"{RUNTIME_PATH.name}: jobs.{quoted}: job name may only use letters, digits, '_', '-', '.'"
    )


def validate(
    name: str, table: object, zone: zoneinfo.ZoneInfo, namespace: str | None
) -> tuple[JobSpec | None, list[str]]:
    """The job, or None with its problems: the config's validator, lines naming `runtime`."""
    problems: list[str] = []
    wrong_name = name_problem(name)
    if wrong_name is not None:
        return None, [wrong_name]
    spec = build_job(RUNTIME_PATH, name, table, zone, problems, namespace)
    return spec, problems


def decode(name: str, raw: bytes) -> dict[str, Any]:
    """A stored value as a job table, or ValueError with a line naming the job."""
    where = f"{RUNTIME_PATH.name}: jobs.{json.dumps(name)[1:-1]}"
    if len(raw) > MAX_TABLE_BYTES:
        raise ValueError(f"{where}: a value of {len(raw)} bytes, not a job table")
    try:
        table = json.loads(raw)
    except (ValueError, RecursionError):
        raise ValueError(f"{where}: {_shown(raw)}, not a JSON job table") from None
    if not isinstance(table, dict):
        raise ValueError(f"{where}: {_shown(raw)}, not a JSON object (a job table)")
    return table


def merge(config: Config, stored: Mapping[str, bytes]) -> RuntimeJobs:
    """Validate stored runtime tables against `config` (its zone, namespace and job names).
    Nothing any value holds raises: it becomes a line of `problems`."""
    result = RuntimeJobs()
    settings = config.scheduler
    for name in sorted(stored):
        try:
            table = decode(name, stored[name])
        except ValueError as exc:
            result.problems.append(str(exc))
            continue
        try:
            spec, problems = validate(name, table, settings.timezone, settings.namespace)
        except Exception as exc:  # noqa: BLE001 - a value no validator foresaw stops no other job
            where = f"{RUNTIME_PATH.name}: jobs.{json.dumps(name)[1:-1]}"
            result.problems.append(f"{where}: could not be validated ({type(exc).__name__})")
            continue
        if spec is None:
            result.problems.extend(problems or [f"{RUNTIME_PATH.name}: jobs.{name}: invalid"])
            continue
        result.tables[name] = table
        if name in config.jobs:
            result.shadowed.append(name)
        else:
            result.jobs[name] = spec
    return result


def running_jobs(config: Config, runtime: Mapping[str, JobSpec]) -> dict[str, JobSpec]:
    """What a leader runs: the config's jobs, and the runtime jobs no config job shadows."""
    return {**{n: s for n, s in runtime.items() if n not in config.jobs}, **config.jobs}


def all_jobs(config: Config, runtime: Mapping[str, JobSpec]) -> dict[str, tuple[JobSpec, Source]]:
    """Every running job with where it comes from ("config" or "runtime"), sorted by name."""
    found: dict[str, tuple[JobSpec, Source]] = {
        name: (spec, "runtime") for name, spec in runtime.items() if name not in config.jobs
    }
    found.update((name, (spec, "config")) for name, spec in config.jobs.items())
    return dict(sorted(found.items()))


# -- building a table from command-line options ------------------------------------------------


def json_option(text: str, option: str, want: type[list[Any]] | type[dict[str, Any]]) -> Any:
    """`--args` / `--kwargs` text as a JSON list / object; ValueError naming the option."""
    what, example = ("a JSON list", '[1, "a"]') if want is list else ("a JSON object", '{"k": 1}')
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, want):
        # The text is cut short: an option's error is one readable line, whatever was given.
        raise ValueError(f"{option}: expected {what} like '{example}', got {shown(text)}")
    return value


def delayed_at(now_s: float, delay: timedelta) -> datetime:
    """`--in`: the whole second `delay` after `now_s` (rounded up), in UTC."""
    seconds = now_s + delay.total_seconds()
    whole = int(seconds) + (seconds > int(seconds))
    return datetime.fromtimestamp(whole, UTC)


def edited(table: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`table` with `changes` applied; a new schedule replaces the old one (and an `every`'s
    start goes with its schedule unless the new one is an `every` too)."""
    result = dict(table)
    if any(key in changes for key in SCHEDULE_KEYS):
        for key in SCHEDULE_KEYS:
            result.pop(key, None)
        if "every" not in changes:
            result.pop("start", None)
    result.update(changes)
    return result


def normalized(table: Mapping[str, Any], spec: JobSpec) -> dict[str, Any]:
    """The table to store: `at` and `start` as ISO 8601 instants with their offset (read in
    the job's zone when written without one), so the stored job means the same everywhere."""
    result = dict(table)
    # From the spec, not its trigger: an `end` or `max_runs` wraps the trigger.
    if spec.kind == "at":
        result["at"] = datetime.fromisoformat(spec.schedule).astimezone(spec.timezone).isoformat()
    if spec.start is not None and "start" in result:
        result["start"] = spec.start.astimezone(spec.timezone).isoformat()
    if spec.end is not None and "end" in result:
        result["end"] = spec.end.astimezone(spec.timezone).isoformat()
    return result


def encode(table: Mapping[str, Any]) -> str:
    """A job table as stored: compact JSON, keys in the config's order."""
    return json.dumps(dict(table), separators=(",", ":"), allow_nan=False)


def describe(spec: JobSpec, table: Mapping[str, Any], now: datetime) -> str:
    """E.g. "cron 0 9 * * MON-FRI, next 2026-12-03T09:00:00+01:00"."""
    schedule = table.get("at", spec.schedule) if spec.kind == "at" else spec.schedule
    upcoming = spec.trigger.next_slot(now)
    next_text = "none" if upcoming is None else upcoming.astimezone(spec.timezone).isoformat()
    return f"{spec.kind} {schedule}, next {next_text}"


def _shown(raw: bytes) -> str:
    value = raw[: _SHOWN_CHARS * 4].decode("utf-8", errors="backslashreplace")
    cut = len(value) > _SHOWN_CHARS or len(raw) > _SHOWN_CHARS * 4
    value = "".join(c if c.isprintable() else repr(c)[1:-1] for c in value[:_SHOWN_CHARS])
    return f"'{value}'..." if cut else f"'{value}'"
