"""What `jobs list`, `next` and `status` show: plain records for --json, tables for people.

Everything shown may have come from Redis, where anything can be written: `to_json` and the
table cells render any value (non-finite floats, huge numbers, bytes, escapes) without failing,
and `unreadable_lines` is how every command shows a value it could not read, naming the key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from scheduler.clock import utc
from scheduler.config import Config
from scheduler.jobspec import JobSpec
from scheduler.lease import LeaseHolder
from scheduler.store.state import Unreadable
from scheduler.wire import slot_text

# A node whose heartbeat is older than this is not "seen recently".
RECENT_S = 10.0
# Integers beyond this lose precision in most JSON readers (JavaScript's doubles): text instead.
_JSON_INT_MAX = 2**53
# Deeper values are not shown; nothing this package writes nests this far.
_JSON_DEPTH = 32
# A table cell longer than this is cut: one garbled value must not make the table unreadable.
_CELL_CHARS = 80


def next_slots(job: JobSpec, after: datetime, count: int) -> list[datetime]:
    """The next `count` slots after `after`, in the job's time zone."""
    slots: list[datetime] = []
    cursor: datetime | None = after
    while cursor is not None and len(slots) < count:
        cursor = job.trigger.next_slot(cursor)
        if cursor is not None:
            slots.append(cursor.astimezone(job.timezone))
    return slots


def job_rows(
    config: Config,
    now_s: float,
    last_fires: Mapping[str, int],
    outcomes: Mapping[str, Mapping[str, Any]],
    paused: set[str],
    quarantined: Mapping[str, Mapping[str, Any]] | None = None,
    unreadable: Sequence[Unreadable] = (),
) -> list[dict[str, Any]]:
    """One row per configured job; `unreadable` lands on the rows it concerns: a whole key's
    problem on every row, a field's on that job's row."""
    quarantined = quarantined or {}
    rows = []
    for name, job in sorted(config.jobs.items()):
        upcoming = next_slots(job, utc(now_s), 1)
        last = last_fires.get(name)
        outcome = outcomes.get(name, {})
        rows.append(
            {
                "name": name,
                "task": job.task,
                "schedule": f"{job.kind} {job.schedule}",
                "timezone": job.timezone.key,
                "next_run": upcoming[0].isoformat() if upcoming else None,
                "last_run": None if last is None else slot_text(last),
                "outcome": outcome.get("outcome"),
                "paused": name in paused,
                "quarantined": _quarantine_text(quarantined.get(name)),
                "queue": job.queue,
                "unreadable": [u for u in unreadable if u.field in (None, name)],
            }
        )
    return rows


def missed_records(
    records: Sequence[Mapping[str, Any]], unreadable: Sequence[Unreadable]
) -> list[dict[str, Any]]:
    """`jobs missed`'s records: the readable ranges, then one record per unreadable one."""
    return [{**record, "unreadable": []} for record in records] + [
        {"unreadable": [problem]} for problem in unreadable
    ]


def status_record(
    holder: LeaseHolder | None,
    nodes: Mapping[str, Mapping[str, Any]],
    now_s: float,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    # StateStore.read_nodes leaves out records whose seen_at is not a time.
    recent = [
        dict(record)
        for _, record in sorted(nodes.items())
        if now_s - float(record.get("seen_at", 0)) <= RECENT_S
    ]
    for record in recent:
        record["seen_ago_s"] = round(now_s - float(record.get("seen_at", 0)), 1)
    policies = sorted(
        {r["maxmemory_policy"] for r in recent if isinstance(r.get("maxmemory_policy"), str)}
        - {"unknown"}
    )
    warnings = [
        f"Redis maxmemory-policy is {_printable(policy)}, not noeviction: Redis may evict the "
        "lease, watermarks or outbox under memory pressure"
        for policy in policies
        if policy != "noeviction"
    ]
    return {
        "leader": holder.node_id if holder else None,
        "warnings": warnings,
        "fencing_token": holder.token if holder else None,
        "lease_left_ms": holder.left_ms if holder else None,
        **extra,
        "nodes": recent,
    }


def _quarantine_text(found: Mapping[str, Any] | None) -> str | None:
    if found is None:
        return None
    return f"key {found.get('key')} holds {found.get('found')}"


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Left-aligned columns with a header; None shows as "-"."""
    cells = [[cell(row.get(column)) for column in columns] for row in rows]
    header = [column.upper().replace("_", " ") for column in columns]
    widths = [max(len(text) for text in column) for column in zip(header, *cells, strict=False)]
    lines = [
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True))
        for line in [header, *cells]
    ]
    return "\n".join(line.rstrip() for line in lines)


def unreadable_lines(problems: Iterable[Unreadable]) -> list[str]:
    """How every command shows what it could not read: one line per problem, naming the key."""
    return [f"unreadable: {_printable(problem.describe())}" for problem in dict.fromkeys(problems)]


def to_json(value: Any) -> str:
    """--json output; valid JSON whatever was read from Redis."""
    return json.dumps(json_safe(value), indent=2, allow_nan=False)


def json_safe(value: Any, depth: int = 0) -> Any:
    """`value` with only what strict JSON can carry: non-finite floats and huge integers as
    text, bytes and lone surrogates escaped, unknown objects as their text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Unreadable):
        return value.record()
    if isinstance(value, str):
        return _escaped(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    if isinstance(value, int):
        return value if -_JSON_INT_MAX <= value <= _JSON_INT_MAX else _number_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth >= _JSON_DEPTH:
        return "(nested too deep)"
    if isinstance(value, Mapping):
        return {str(json_safe(k, depth + 1)): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item, depth + 1) for item in value]
    return _escaped(str(value))


def _number_text(value: int) -> str:
    try:
        return str(value)
    except ValueError:  # more digits than Python agrees to print
        return f"a number of {value.bit_length()} bits"


def _escaped(text: str) -> str:
    # A lone surrogate (JSON "\ud800") cannot be written to a UTF-8 terminal or pipe.
    return text.encode("utf-8", errors="backslashreplace").decode("utf-8")


def _printable(text: str) -> str:
    """No terminal control characters from Redis reach the operator's screen."""
    text = _escaped(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def cell(value: object) -> str:
    """One value as table text: any value, short, without control characters."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        text = _number_text(value)
    elif isinstance(value, str | float):
        text = str(value)
    else:
        text = json.dumps(json_safe(value), allow_nan=False)
    text = _printable(text[: _CELL_CHARS * 2])
    return text if len(text) <= _CELL_CHARS else text[: _CELL_CHARS - 3] + "..."
