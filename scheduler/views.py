"""What `jobs list`, `next` and `status` show: plain records for --json, tables for people.

Everything shown may have come from Redis, where anything can be written: `to_json` and the
table cells render any value (non-finite floats, huge numbers, bytes, escapes) without failing,
and `unreadable_lines` is how every command shows a value it could not read, naming the key.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from scheduler.drift import compare
from scheduler.jobspec import JobSpec
from scheduler.lease import LeaseHolder
from scheduler.store.configs import Published
from scheduler.store.state import Unreadable

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
    published: Mapping[str, Published] | None = None,
) -> dict[str, Any]:
    """`status`'s record. A node whose config hash is not the leader's has `config_drift`
    true (None while no leader's record says its hash); `drift` says which jobs differ, from
    `published` (hash -> that config's published jobs; see `drift_hashes`)."""
    # StateStore.read_nodes leaves out records whose seen_at is not a time.
    recent = [
        dict(record)
        for _, record in sorted(nodes.items())
        if now_s - float(record.get("seen_at", 0)) <= RECENT_S
    ]
    leader_hash = leader_config_hash(holder, nodes)
    for record in recent:
        record["seen_ago_s"] = round(now_s - float(record.get("seen_at", 0)), 1)
        record["config_drift"] = (
            None if leader_hash is None else record.get("config_hash") != leader_hash
        )
    policies = sorted(
        {r["maxmemory_policy"] for r in recent if isinstance(r.get("maxmemory_policy"), str)}
        - {"unknown"}
    )
    warnings = [
        f"Redis maxmemory-policy is {printable(policy)}, not noeviction: Redis may evict the "
        "lease, watermarks or outbox under memory pressure"
        for policy in policies
        if policy != "noeviction"
    ]
    drift = [
        _node_drift(record, leader_hash, published or {})
        for record in recent
        if record["config_drift"] and leader_hash is not None
    ]
    warnings += [entry["summary"] for entry in drift]
    return {
        "leader": holder.node_id if holder else None,
        "warnings": warnings,
        "fencing_token": holder.token if holder else None,
        "lease_left_ms": holder.left_ms if holder else None,
        "leader_config_hash": leader_hash,
        **extra,
        "nodes": recent,
        "drift": drift,
    }


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
    return [f"unreadable: {printable(problem.describe())}" for problem in dict.fromkeys(problems)]


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


def printable(text: str) -> str:
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
    text = printable(text[: _CELL_CHARS * 2])
    return text if len(text) <= _CELL_CHARS else text[: _CELL_CHARS - 3] + "..."


# -- config drift in `status` ------------------------------------------------------------------

# What a config hash looks like (config.py: 12 hex digits); anything else read from a node
# record is shown, never used in a key name.
_CONFIG_HASH = re.compile(r"[0-9a-f]{1,64}")


def leader_config_hash(
    holder: LeaseHolder | None, nodes: Mapping[str, Mapping[str, Any]]
) -> str | None:
    """The config hash in the lease holder's node record, or None."""
    if holder is None:
        return None
    found = nodes.get(holder.node_id, {}).get("config_hash")
    return found if isinstance(found, str) else None


def drift_hashes(holder: LeaseHolder | None, nodes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The config hashes whose published jobs `status_record` needs: the leader's and those of
    the nodes that differ from it (each a well-formed hash)."""
    leader_hash = leader_config_hash(holder, nodes)
    if leader_hash is None:
        return []
    found = {leader_hash} | {record.get("config_hash") for record in nodes.values()}
    return sorted(h for h in found if isinstance(h, str) and _CONFIG_HASH.fullmatch(h))


def _node_drift(
    record: Mapping[str, Any], leader_hash: str, published: Mapping[str, Published]
) -> dict[str, Any]:
    node_hash = record.get("config_hash")
    node_hash = node_hash if isinstance(node_hash, str) else None
    theirs = published.get(node_hash) if node_hash is not None else None
    leaders = published.get(leader_hash)
    entry: dict[str, Any] = {
        "node_id": record.get("node_id"),
        "config_hash": node_hash,
        "leader_config_hash": leader_hash,
        "known": False,
        "added": [],
        "removed": [],
        "changed": [],
    }
    who = f"{cell(record.get('node_id'))} runs config {cell(record.get('config_hash'))}"
    head = f"config drift: {who} (leader {cell(leader_hash)})"
    if theirs is None or leaders is None or theirs.jobs is None or leaders.jobs is None:
        unknown = [
            f"config {cell(found)} is {pub.missing() if pub else 'not published'}"
            for found, pub in ((leader_hash, leaders), (node_hash, theirs))
            if pub is None or pub.jobs is None
        ]
        entry["summary"] = f"{head}: which jobs differ is unknown ({'; '.join(unknown)})"
        return entry
    difference = compare(leaders.jobs, theirs.jobs)
    entry.update(difference.record(), known=True)
    entry["summary"] = f"{head}: " + (
        f"jobs {printable(difference.describe(': '))}"
        if difference
        else "no job differs (the configs differ elsewhere)"
    )
    return entry
