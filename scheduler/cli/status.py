"""`scheduler status`: who leads, under which token, and every node seen recently, with the
nodes whose config differs from the leader's (and which jobs differ).

Exit codes for health checks: 0 when a leader holds the lease, 3 when none does, 1 when Redis
cannot be reached."""

from __future__ import annotations

from typing import Any

import typer

from scheduler.cli.common import ConfigOption, JsonOption, connect, load, redis_failed
from scheduler.cli.watch import IntervalOption, WatchOption, watch
from scheduler.config import Config
from scheduler.errors import SchedulerError
from scheduler.quarantine import names
from scheduler.status_source import read_status_record
from scheduler.store.state import StateStore
from scheduler.views import cell, table, to_json, unreadable_lines
from scheduler.wire import slot_text

# `status`'s exit code when no node holds the lease.
NO_LEADER = 3


def status(
    config: ConfigOption = None,
    as_json: JsonOption = False,
    watching: WatchOption = False,
    interval_s: IntervalOption = 2.0,
) -> None:
    """Leader, fencing token, lease left, and every node seen recently; exit 3 without a
    leader."""
    cfg = load(config)
    store = connect(cfg)
    if watching:
        watch(lambda: _render(status_record_of(cfg, store), as_json), interval_s)
        return
    record = status_record_of(cfg, store)
    typer.echo(_render(record, as_json))
    if record["leader"] is None:
        raise typer.Exit(NO_LEADER)


def _render(record: dict[str, Any], as_json: bool) -> str:
    return to_json(record) if as_json else status_text(record)


def status_record_of(cfg: Config, store: StateStore) -> dict[str, Any]:
    """Everything `status` shows, read from Redis (exit 1 when Redis fails)."""
    try:
        return read_status_record(cfg, store)
    except SchedulerError as exc:
        redis_failed(exc)


def status_text(record: dict[str, Any]) -> str:
    """`status` for people: a headline, warnings, then one row per node."""
    lines: list[str] = []
    leader = record["leader"] or "(none)"
    lines.append(
        f"leader: {cell(leader)}  token: {record['fencing_token'] or '-'}  "
        f"lease left: {record['lease_left_ms'] or '-'} ms  "
        f"leader's config: {cell(record['leader_config_hash'])}  "
        f"config: {record['config_hash']}  tzdata: {record['tzdata']}"
    )
    outbox = record["outbox"]
    if not record["atomic_enqueue"]:
        full = "  FULL: slots are being recorded as missed" if outbox["full"] else ""
        pending = "?" if outbox["pending"] is None else outbox["pending"]
        lines.append(f"outbox: {pending} of {outbox['max']} waiting for the broker{full}")
    if record["state_lost"] is not None:
        noticed = cell(record["state_lost"].get("noticed_at"))
        lines.append(f"STATE LOST: Redis lost its data; noticed {noticed}")
    for warning in record["warnings"]:
        lines.append(f"WARNING: {warning}")
    for node in record["nodes"]:
        waiting = node.get("restart_needed")
        if isinstance(waiting, list) and waiting:
            keys = ", ".join(cell(key) for key in waiting)
            lines.append(
                f"RESTART NEEDED: node {cell(node.get('node_id'))}: a reload changed {keys}, "
                "which it reads only at start"
            )
    alike: dict[tuple[str, str], list[str]] = {}
    for job, found in sorted(record["quarantined"].items()):
        alike.setdefault((cell(found.get("key")), cell(found.get("found"))), []).append(cell(job))
    for (key, found), jobs in alike.items():
        who = jobs[0] if len(jobs) == 1 else f"{len(jobs)} jobs ({names(jobs)})"
        lines.append(f"QUARANTINED: {who}: key {key} holds {found} (not fired until it is fixed)")
    for job, alert in sorted(record["alerts"].items()):
        since = alert.get("since")
        when = "" if not isinstance(since, int | float) else f" since {slot_text(int(since))}"
        lines.append(f"ALERT: job {cell(job)}: {cell(alert.get('reason'))}{when}")
    columns = [
        "node_id", "host", "pid", "version", "leader", "seen_ago_s", "clock_offset_ms",
        "clock_ok", "config_hash", "drift", "tzdata",
    ]  # fmt: skip
    rows = [
        {**node, "drift": "DRIFT" if node["config_drift"] else None} for node in record["nodes"]
    ]
    lines.append(table(rows, columns))
    for line in unreadable_lines(record["unreadable"]):
        lines.append(line)
    return "\n".join(lines)
