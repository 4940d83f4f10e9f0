"""What `jobs list`, `next` and `status` show: plain records for --json, tables for people."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from scheduler.clock import utc
from scheduler.config import Config
from scheduler.jobspec import JobSpec
from scheduler.lease import LeaseHolder
from scheduler.wire import slot_text

# A node whose heartbeat is older than this is not "seen recently".
RECENT_S = 10.0


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
) -> list[dict[str, Any]]:
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
            }
        )
    return rows


def status_record(
    holder: LeaseHolder | None,
    nodes: Mapping[str, Mapping[str, Any]],
    now_s: float,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    recent = [
        dict(record)
        for _, record in sorted(nodes.items())
        if now_s - float(record.get("seen_at", 0)) <= RECENT_S
    ]
    for record in recent:
        record["seen_ago_s"] = round(now_s - float(record.get("seen_at", 0)), 1)
    policies = sorted({str(r.get("maxmemory_policy")) for r in recent} - {"None", "unknown"})
    warnings = [
        f"Redis maxmemory-policy is {policy}, not noeviction: Redis may evict the lease, "
        "watermarks or outbox under memory pressure"
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
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    header = [column.upper().replace("_", " ") for column in columns]
    widths = [max(len(text) for text in column) for column in zip(header, *cells, strict=False)]
    lines = [
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True))
        for line in [header, *cells]
    ]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
