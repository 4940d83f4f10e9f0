"""`scheduler plan --config NEW`: a dry run of a changed config against the live one.

The live config is the one the leader runs: its hash from the leader's node record, its jobs
from what it published (scheduler/store/configs.py); `--live FILE` reads it from a file
instead. Shown: jobs added, removed and changed (field by field), and for each added or
changed job its next slots before and after, computed by the triggers themselves (DST, `H`),
and what the leader would do at once on reload with the job's watermark (catch up or record
as missed, by the job's policies). Nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from scheduler.cli import common
from scheduler.cli.common import ConfigOption, JsonOption, connect, fail, load, redis_failed
from scheduler.clock import utc
from scheduler.config import Config
from scheduler.drift import Drift, compare, fingerprints, rebuild_job
from scheduler.errors import SchedulerError, StateCorrupt
from scheduler.jobspec import JobSpec
from scheduler.lease import read_holder
from scheduler.policy import decide
from scheduler.store.configs import read_published
from scheduler.store.failures import redis_errors
from scheduler.store.state import Reading, StateStore, Unreadable, shown, text
from scheduler.views import cell, leader_config_hash, next_slots, to_json, unreadable_lines
from scheduler.wire import slot_text

LiveOption = Annotated[
    Path | None,
    typer.Option(
        "--live",
        "--config-live",
        help="The live config file (default: the config the leader published in Redis).",
    ),
]
CountOption = Annotated[
    int, typer.Option("-n", "--next", min=1, max=100, help="Next slots shown per job.")
]
# Watermarks are read this many jobs at a time.
_CHUNK = 1000


def plan(
    config: ConfigOption = None,
    live: LiveOption = None,
    count: CountOption = 3,
    as_json: JsonOption = False,
) -> None:
    """Dry run: what changes if the leader runs this config instead of the live one."""
    new = load(config)
    live_file = load(live) if live is not None else None
    store = connect(new)
    notes: list[str] = []
    try:
        source, old_fps, old_specs, unreadable = _live(store, live_file, notes)
        drift = compare(old_fps, fingerprints(new.jobs))
        wanted = [*drift.added, *(change.job for change in drift.changed)]
        marks = _watermarks(store, wanted)
    except SchedulerError as exc:
        redis_failed(exc)
    now_s = common.clock.time()
    problems: list[str] = []
    record = {
        "live": source,
        "new": {"config_hash": new.hash, "path": str(new.path), "jobs": len(new.jobs)},
        "now": slot_text(int(now_s)),
        "added": [
            {
                "job": name,
                "definition": new.jobs[name].fingerprint(),
                **_slots(new.jobs[name], marks.value.get(name), now_s, count, "next"),
            }
            for name in drift.added
        ],
        "removed": [{"job": name, "definition": old_fps[name]} for name in drift.removed],
        "changed": [
            {
                **change.record(),
                **_slots(
                    _old_spec(change.job, old_fps, old_specs, new, problems), None, now_s,
                    count, "next_live",
                ),
                **_slots(new.jobs[change.job], marks.value.get(change.job), now_s, count,
                         "next_new"),
            }
            for change in drift.changed
        ],
        "unchanged": len(set(old_fps) & set(new.jobs)) - len(drift.changed),
        "notes": notes,
        "problems": problems,
        "unreadable": [*unreadable, *marks.unreadable],
    }  # fmt: skip
    if as_json:
        typer.echo(to_json(record))
    else:
        _print_plan(record, drift)


def _live(
    store: StateStore, live_file: Config | None, notes: list[str]
) -> tuple[dict[str, Any], Mapping[str, Any], Mapping[str, JobSpec], list[Unreadable]]:
    """Where the live config comes from, its fingerprints, its JobSpecs when a file gave
    them, and what could not be read. Exits 1 when there is no live config to compare with."""
    holder = read_holder(store.client, store.keys)
    nodes = store.read_nodes()
    leader_hash = leader_config_hash(holder, nodes.value)
    unreadable = list(nodes.unreadable)
    published = None
    if holder is None:
        missing = "no leader holds the lease"
    elif leader_hash is None:
        missing = f"the leader {cell(holder.node_id)} has no node record with a config hash"
    else:
        published = read_published(store.client, store.keys, leader_hash)
        unreadable += published.unreadable
        missing = f"the leader's config {cell(leader_hash)} is {published.missing()} in Redis"
    if live_file is not None:
        if published is None or published.jobs is None:
            notes.append(f"{missing}; comparing with --live {live_file.path}")
        elif leader_hash != live_file.hash:
            notes.append(
                f"the leader {cell(holder.node_id if holder else None)} runs config "
                f"{cell(leader_hash)}, not --live {live_file.path} (config {live_file.hash})"
            )
        source = {
            "source": "file", "config_hash": live_file.hash, "path": str(live_file.path),
            "leader": holder.node_id if holder else None, "jobs": len(live_file.jobs),
        }  # fmt: skip
        return source, fingerprints(live_file.jobs), live_file.jobs, unreadable
    if published is None or published.jobs is None:
        fail(f"no live config: {missing}; give the live config file with --live FILE", 1)
    assert holder is not None
    source = {
        "source": "leader", "config_hash": leader_hash, "path": None,
        "leader": holder.node_id, "jobs": len(published.jobs),
    }  # fmt: skip
    return source, published.jobs, {}, unreadable


def _old_spec(
    name: str,
    old_fps: Mapping[str, Any],
    old_specs: Mapping[str, JobSpec],
    new: Config,
    problems: list[str],
) -> JobSpec | None:
    """The live JobSpec of `name`: from the --live file, else rebuilt from its fingerprint."""
    if name in old_specs:
        return old_specs[name]
    return rebuild_job(name, old_fps[name], new.scheduler.namespace, problems)


def _slots(
    job: JobSpec | None, watermark: int | None, now_s: float, count: int, key: str
) -> dict[str, Any]:
    """`key`: the job's next `count` slots after now (None: not known); with a watermark,
    also what a leader does at once on reload (`on_reload`: slots fired and missed)."""
    if job is None:
        return {key: None}
    slots = [slot.isoformat() for slot in next_slots(job, utc(now_s), count)]
    if key == "next_live":
        return {key: slots}
    found: dict[str, Any] = {key: slots, "watermark": None, "on_reload": None}
    if watermark is not None:
        found["watermark"] = slot_text(watermark)
        decision = decide(job, watermark, int(now_s))
        found["on_reload"] = {
            "fire": [slot_text(slot) for slot in decision.fire],
            "missed": [
                {"first": slot_text(r.first_s), "last": slot_text(r.last_s), "count": r.count,
                 "reason": r.reason}
                for r in decision.missed
            ],
        }  # fmt: skip
    return found


def _watermarks(store: StateStore, jobs: Sequence[str]) -> Reading[dict[str, int]]:
    """The watermarks of `jobs`; one that is not a whole number of seconds is reported."""
    key = store.keys.watermarks
    found: dict[str, int] = {}
    unreadable: list[Unreadable] = []
    if not jobs:
        return Reading(found, unreadable)
    try:
        with redis_errors("reading watermarks"):
            kind = store.client.type(key)
            name = text(kind) if isinstance(kind, bytes) else str(kind)
            if name not in ("hash", "none"):
                return Reading(found, [Unreadable(key, f"a {name}, not a hash")])
            for start in range(0, len(jobs), _CHUNK):
                names = list(jobs[start : start + _CHUNK])
                values: list[bytes | None] = store.client.hmget(key, names)  # type: ignore[assignment]
                for job, value in zip(names, values, strict=True):
                    if value is None:
                        continue
                    if len(value) <= 20 and value.isdigit():
                        found[job] = int(value)
                    else:
                        problem = f"{shown(value)}, not a whole number of seconds"
                        unreadable.append(Unreadable(key, problem, job))
    except StateCorrupt as exc:  # the key changed type since TYPE answered
        return Reading(found, [Unreadable(key, f"a value Redis refused to read ({exc})")])
    return Reading(found, unreadable)


def _print_plan(record: Mapping[str, Any], drift: Drift) -> None:
    live, new = record["live"], record["new"]
    where = (
        f"published by the leader {cell(live['leader'])}"
        if live["source"] == "leader"
        else f"from {live['path']}"
    )
    typer.echo(f"live: config {cell(live['config_hash'])} {where} ({live['jobs']} jobs)")
    typer.echo(f"new:  config {new['config_hash']} from {new['path']} ({new['jobs']} jobs)")
    for note in record["notes"]:
        typer.echo(f"note: {note}")
    if not drift:
        typer.echo(f"no job changes ({record['unchanged']} unchanged)")
    for entry in record["added"]:
        typer.echo(f"+ {entry['job']}  added")
        definition = entry["definition"]
        typer.echo(
            f"    {definition['kind']} {_value(definition['schedule'])} in "
            f"{definition['timezone']}, task {definition['task']}"
        )
        _print_next(entry, "next", "next")
    for entry in record["removed"]:
        typer.echo(f"- {cell(entry['job'])}  removed")
    for entry in record["changed"]:
        typer.echo(f"~ {entry['job']}  changed")
        for change in entry["fields"]:
            typer.echo(f"    {change['field']}: {_value(change['old'])} -> {_value(change['new'])}")
        _print_next(entry, "next_live", "next, live")
        _print_next(entry, "next_new", "next, new ")
    if drift:
        typer.echo(f"unchanged: {record['unchanged']} jobs")
    for problem in record["problems"]:
        typer.echo(f"live job not rebuilt: {problem}")
    for line in unreadable_lines(record["unreadable"]):
        typer.echo(line)


def _print_next(entry: Mapping[str, Any], key: str, label: str) -> None:
    slots = entry[key]
    typer.echo(f"    {label}: {'unknown' if slots is None else '  '.join(slots) or 'none'}")
    reload = entry.get("on_reload") if key != "next_live" else None
    if reload is None:
        return
    parts = []
    if reload["fire"]:
        parts.append(
            f"fires {len(reload['fire'])} due slot(s) at once: {', '.join(reload['fire'])}"
        )
    for missed in reload["missed"]:
        parts.append(
            f"records {missed['count']} slot(s) {missed['first']} .. {missed['last']} as "
            f"missed ({missed['reason']})"
        )
    if parts:
        typer.echo(f"    on reload (watermark {entry['watermark']}): {'; '.join(parts)}")


def _value(value: object) -> str:
    """A field's value as a config writes it; None is "(not set)"."""
    if value is None:
        return "(not set)"
    return cell(json.dumps(value) if not isinstance(value, int | float) else value)
