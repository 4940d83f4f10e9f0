"""Config drift: how the jobs of two configs differ, from their fingerprints. Pure.

A fingerprint is `JobSpec.fingerprint()`: what nodes must agree on about one job. Two configs'
fingerprints (by job name) compare into jobs added, removed and changed, each change field by
field in the config's own words (`cron`, `misfire_grace`...). A fingerprint also converts back
into a job table that `build_job`, the one validator of a job table, turns into a JobSpec with
its trigger again: that is how `plan` computes the live config's next slots from what the
leader published.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from scheduler.durations import format_duration
from scheduler.jobspec import JobSpec, build_job
from scheduler.quarantine import names

Fingerprint = Mapping[str, Any]
Fingerprints = Mapping[str, Fingerprint]

SCHEDULE_KINDS = ("cron", "every", "at", "calendar")
# Fingerprint fields in seconds, and the config key each one is written as.
_SECONDS_FIELDS = {
    "misfire_grace_s": "misfire_grace", "alert_after_s": "alert_after", "expires_s": "expires",
    "soft_time_limit_s": "soft_time_limit", "time_limit_s": "time_limit", "jitter_s": "jitter",
    "timeout_s": "timeout", "retry_delay_s": "retry_delay",
}  # fmt: skip
# The config keys whose fingerprint value is seconds (job_table writes them as seconds).
DURATION_KEYS = frozenset(_SECONDS_FIELDS.values())
# The order fields are shown in, as a job table is usually written.
_FIELD_ORDER = (
    "task", "chain", "group", "command", "cwd", "env", "timeout_s", "user", "http",
    "schedule", "cron_hashed", "timezone", "start", "end", "max_runs", "jitter_s", "enabled",
    "args", "kwargs", "queue", "routing_key", "exchange", "priority", "headers", "expires_s",
    "soft_time_limit_s", "time_limit_s", "ignore_result", "retries", "retry_delay_s",
    "retry_backoff", "catchup", "misfire_grace_s", "overlap", "alert_after_s", "alert_task",
    "alert_webhook",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of one job: its config key, the value before and after (None: not set)."""

    field: str
    old: Any
    new: Any

    def record(self) -> dict[str, Any]:
        return {"field": self.field, "old": self.old, "new": self.new}


@dataclass(frozen=True, slots=True)
class JobChange:
    job: str
    fields: tuple[FieldChange, ...]

    def field_names(self) -> list[str]:
        return list(dict.fromkeys(change.field for change in self.fields))

    def record(self) -> dict[str, Any]:
        return {"job": self.job, "fields": [change.record() for change in self.fields]}


@dataclass(frozen=True, slots=True)
class Drift:
    """What `new` has that `old` has not: jobs added, removed, changed (names sorted)."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[JobChange, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def parts(self, shown: int = 20) -> list[tuple[str, str]]:
        """Each kind of difference there is, naming its first `shown` jobs: like ("added",
        "x"), ("removed", "y"), ("changed", "z (cron, timezone)")."""
        found = []
        if self.added:
            found.append(("added", names(list(self.added), shown)))
        if self.removed:
            found.append(("removed", names(list(self.removed), shown)))
        if self.changed:
            listed = [
                f"{change.job} ({', '.join(change.field_names())})"
                for change in self.changed[:shown]
            ]
            more = len(self.changed) - shown
            found.append(("changed", ", ".join(listed) + (f" and {more} more" if more > 0 else "")))
        return found

    def describe(self, separator: str = " ", shown: int = 20) -> str:
        """Like `added x; removed y; changed z (cron)`: `separator` between a kind and its
        jobs."""
        return "; ".join(f"{kind}{separator}{jobs}" for kind, jobs in self.parts(shown))

    def record(self) -> dict[str, Any]:
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": [change.record() for change in self.changed],
        }


def compare(old: Fingerprints, new: Fingerprints) -> Drift:
    """How the jobs `new` differ from the jobs `old`."""
    changed = []
    for name in sorted(set(old) & set(new)):
        before, after = old[name], new[name]
        if before != after:
            changed.append(JobChange(name, tuple(field_changes(before, after))))
    return Drift(
        added=tuple(sorted(set(new) - set(old))),
        removed=tuple(sorted(set(old) - set(new))),
        changed=tuple(changed),
    )


def field_changes(old: Fingerprint, new: Fingerprint) -> list[FieldChange]:
    """Field by field, named as in a job table: a schedule shows as its kind (`cron`); one of
    another kind as the old key unset and the new one set."""
    changes: list[FieldChange] = []
    old_kind, new_kind = old.get("kind"), new.get("kind")
    keys = [*_FIELD_ORDER, *sorted((set(old) | set(new)) - set(_FIELD_ORDER) - {"kind"})]
    for key in keys:
        before, after = old.get(key), new.get(key)
        if key == "schedule":
            if old_kind != new_kind:
                changes.append(FieldChange(_kind_name(old_kind), before, None))
                changes.append(FieldChange(_kind_name(new_kind), None, after))
            elif before != after:
                changes.append(FieldChange(_kind_name(new_kind), before, after))
        elif before != after:
            name = _SECONDS_FIELDS.get(key, key)
            if key in _SECONDS_FIELDS:
                before, after = _duration_text(before), _duration_text(after)
            changes.append(FieldChange(name, before, after))
    return changes


def _kind_name(kind: object) -> str:
    return kind if isinstance(kind, str) and kind in SCHEDULE_KINDS else "schedule"


def _duration_text(value: object) -> object:
    """Seconds as a config writes them ("5m"); anything else as it is."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return format_duration(timedelta(seconds=value))
        except (OverflowError, ValueError):
            return value
    return value


def job_table(fingerprint: Fingerprint) -> dict[str, Any]:
    """The job table a config would write for this fingerprint; `build_job` validates it (a
    fingerprint read from Redis may hold anything: the validator says what is wrong)."""
    table: dict[str, Any] = {}
    kind = fingerprint.get("kind")
    if isinstance(kind, str) and kind in SCHEDULE_KINDS:
        table[kind] = fingerprint.get("schedule")
    for key, value in fingerprint.items():
        # cron_hashed is derived from the schedule and the name: the validator makes it again.
        if key in ("kind", "schedule", "cron_hashed") or value is None:
            continue
        table[_SECONDS_FIELDS.get(key, key)] = value
    return table


def rebuild_job(
    name: str,
    fingerprint: object,
    namespace: str,
    problems: list[str],
    where: str = "published config",
) -> JobSpec | None:
    """The JobSpec a fingerprint was made from, or None with its problems appended (each
    line names `where`, as a config file's errors name the file)."""
    if not isinstance(fingerprint, Mapping):
        problems.append(
            f"{where}: jobs.{name}: expected a fingerprint, got {type(fingerprint).__name__}"
        )
        return None
    table = job_table(fingerprint)
    if not any(kind in table for kind in SCHEDULE_KINDS):
        problems.append(f"{where}: jobs.{name}: kind {fingerprint.get('kind')!r} is no schedule")
        return None
    return build_job(Path(where), name, table, zoneinfo.ZoneInfo("UTC"), problems, namespace)


def fingerprints(jobs: Mapping[str, JobSpec], only: Sequence[str] | None = None) -> dict[str, Any]:
    """The fingerprints of `jobs` (of `only` these names, when given)."""
    chosen = jobs if only is None else {name: jobs[name] for name in only if name in jobs}
    return {name: job.fingerprint() for name, job in chosen.items()}
