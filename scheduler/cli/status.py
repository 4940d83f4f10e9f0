"""`scheduler status`: who leads, under which token, and every node seen recently."""

from __future__ import annotations

from typing import Any

import typer

from scheduler import __version__
from scheduler.cli.common import ConfigOption, JsonOption, connect, load, redis_failed
from scheduler.connections import redact_url, same_redis, tzdata_version
from scheduler.errors import SchedulerError
from scheduler.lease import read_holder
from scheduler.quarantine import names
from scheduler.views import cell, status_record, table, to_json, unreadable_lines


def status(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Leader, fencing token, lease left, and every node seen recently."""
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
            "unreadable": [
                *outbox.unreadable, *nodes.unreadable, *state_lost.unreadable,
                *quarantined.unreadable,
            ],
        },
    )  # fmt: skip
    if as_json:
        typer.echo(to_json(record))
        return
    _print_status(record)


def _print_status(record: dict[str, Any]) -> None:
    leader = record["leader"] or "(none)"
    typer.echo(
        f"leader: {leader}  token: {record['fencing_token'] or '-'}  "
        f"lease left: {record['lease_left_ms'] or '-'} ms  "
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
    columns = [
        "node_id", "host", "pid", "leader", "clock_offset_ms", "clock_ok", "config_hash",
        "seen_ago_s",
    ]  # fmt: skip
    typer.echo(table(record["nodes"], columns))
    for line in unreadable_lines(record["unreadable"]):
        typer.echo(line)
