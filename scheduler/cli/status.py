"""`scheduler status`: who leads, under which token, and every node seen recently, with the
nodes whose config differs from the leader's (and which jobs differ).

Exit codes for health checks: 0 when a leader holds the lease, 3 when none does, 1 when Redis
cannot be reached."""

from __future__ import annotations

from typing import Any

import typer

from scheduler import __version__
from scheduler.cli.common import ConfigOption, JsonOption, connect, load, redis_failed
from scheduler.connections import redact_url, same_redis, tzdata_version
from scheduler.errors import SchedulerError
from scheduler.lease import read_holder
from scheduler.quarantine import names
from scheduler.store.alerts import read_alerts
from scheduler.store.configs import read_published
from scheduler.views import cell, drift_hashes, status_record, table, to_json, unreadable_lines
from scheduler.wire import slot_text

# `status`'s exit code when no node holds the lease.
NO_LEADER = 3


def status(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Leader, fencing token, lease left, and every node seen recently; exit 3 without a
    leader."""
    cfg = load(config)
    store = connect(cfg)
    try:
        holder = read_holder(store.client, store.keys)
        settings = cfg.scheduler
        outbox = store.read_outbox_size()
        nodes = store.read_nodes()
        now_s = store.server_time()
        state_lost = store.read_state_lost()
        quarantined = store.read_quarantined()
        alerts = read_alerts(store, store.keys)
        published = {
            found: read_published(store.client, store.keys, found)
            for found in drift_hashes(holder, nodes.value)
        }
    except SchedulerError as exc:
        redis_failed(exc)
    pending = outbox.value
    record = status_record(
        holder,
        nodes.value,
        now_s,
        {
            "namespace": settings.namespace,
            "config_hash": cfg.hash,
            "tzdata": tzdata_version(),
            "version": __version__,
            "broker": redact_url(settings.effective_broker_url),
            "atomic_enqueue": same_redis(settings.redis_url, settings.effective_broker_url),
            "outbox": {
                "pending": pending,
                "max": settings.outbox_max,
                "full": pending is not None and pending >= settings.outbox_max,
            },
            "state_lost": state_lost.value,
            "quarantined": quarantined.value,
            "alerts": alerts.value,
            "unreadable": [
                *outbox.unreadable, *nodes.unreadable, *state_lost.unreadable,
                *quarantined.unreadable, *alerts.unreadable,
                *(p for pub in published.values() for p in pub.unreadable),
            ],
        },
        published,
    )  # fmt: skip
    if as_json:
        typer.echo(to_json(record))
    else:
        _print_status(record)
    if holder is None:
        raise typer.Exit(NO_LEADER)


def _print_status(record: dict[str, Any]) -> None:
    leader = record["leader"] or "(none)"
    typer.echo(
        f"leader: {cell(leader)}  token: {record['fencing_token'] or '-'}  "
        f"lease left: {record['lease_left_ms'] or '-'} ms  "
        f"leader's config: {cell(record['leader_config_hash'])}  "
        f"config: {record['config_hash']}  tzdata: {record['tzdata']}"
    )
    outbox = record["outbox"]
    if not record["atomic_enqueue"]:
        full = "  FULL: slots are being recorded as missed" if outbox["full"] else ""
        pending = "?" if outbox["pending"] is None else outbox["pending"]
        typer.echo(f"outbox: {pending} of {outbox['max']} waiting for the broker{full}")
    if record["state_lost"] is not None:
        noticed = cell(record["state_lost"].get("noticed_at"))
        typer.echo(f"STATE LOST: Redis lost its data; noticed {noticed}")
    for warning in record["warnings"]:
        typer.echo(f"WARNING: {warning}")
    alike: dict[tuple[str, str], list[str]] = {}
    for job, found in sorted(record["quarantined"].items()):
        alike.setdefault((cell(found.get("key")), cell(found.get("found"))), []).append(cell(job))
    for (key, found), jobs in alike.items():
        who = jobs[0] if len(jobs) == 1 else f"{len(jobs)} jobs ({names(jobs)})"
        typer.echo(f"QUARANTINED: {who}: key {key} holds {found} (not fired until it is fixed)")
    for job, alert in sorted(record["alerts"].items()):
        since = alert.get("since")
        when = "" if not isinstance(since, int | float) else f" since {slot_text(int(since))}"
        typer.echo(f"ALERT: job {cell(job)}: {cell(alert.get('reason'))}{when}")
    columns = [
        "node_id", "host", "pid", "version", "leader", "seen_ago_s", "clock_offset_ms",
        "clock_ok", "config_hash", "drift", "tzdata",
    ]  # fmt: skip
    rows = [
        {**node, "drift": "DRIFT" if node["config_drift"] else None} for node in record["nodes"]
    ]
    typer.echo(table(rows, columns))
    for line in unreadable_lines(record["unreadable"]):
        typer.echo(line)
