"""`jobs show NAME`: the whole definition, watermark, pause and quarantine, the next 10 slots,
the last 10 fires with what the workers reported, and the job's missed ranges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scheduler.cli import common
from scheduler.wire import slot_text, task_id
from tests.cli.test_history import (
    KEYS,
    NOW,
    NS,
    T0,
    fire,
    populate,
    ran,
    run,
    run_json,
    write_config,
)
from tests.clocks import ManualClock
from tests.conftest import RedisServer

SHOW_KEYS = {
    "name", "definition", "watermark", "last_success", "next_slots", "fires", "missed",
    "paused", "pause", "skipped_while_paused", "quarantined", "unreadable",
}  # fmt: skip


@pytest.fixture
def config(tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(common, "clock", ManualClock(wall_s=NOW))
    populate(redis_server.client())
    return write_config(tmp_path, redis_server.url)


def test_json_shape_definition_state_next_slots_fires_and_missed(
    config: Path, redis_server: RedisServer
) -> None:
    client = redis_server.client()
    client.hset(KEYS.watermarks, "a", str(T0 + 120))
    client.hset(KEYS.last_success, "a", f"{T0 + 1.77:.3f}")
    client.sadd(KEYS.paused, "a")
    pause = {"since": T0 + 130.5, "reason": "maintenance", "watermark": T0 + 120}
    client.hset(KEYS.pause_info, "a", json.dumps(pause))
    shown = run_json(config, "jobs", "show", "a")
    assert set(shown) == SHOW_KEYS
    assert shown["name"] == "a"
    assert shown["definition"] == {
        "task": "jobs.examples.ping", "kind": "every", "schedule": "1m",
        "description": "Every minute", "timezone": "UTC", "args": [], "kwargs": {},
        "queue": "celery", "catchup": "all", "misfire_grace": "1m30s", "overlap": "skip",
        "alert_after": "2h", "alert_task": None, "alert_webhook": None,
        "start": "2027-01-01T00:00:00+00:00",
    }  # fmt: skip
    assert shown["watermark"] == slot_text(T0 + 120)
    assert shown["last_success"] == "2027-01-15T08:00:01.770Z"
    assert (shown["paused"], shown["pause"], shown["quarantined"]) == (True, pause, None)
    # NOW is 09:00:00 on the dot: the next slot of an every-minute job is 09:01.
    assert shown["next_slots"] == [f"2027-01-15T09:{m:02d}:00+00:00" for m in range(1, 11)]
    assert [(f["kind"], f["outcome"], f["task_id"]) for f in shown["fires"]] == [
        ("manual", "received", "man-1"),
        ("scheduled", "failed", task_id(NS, "a", T0 + 60)),
        ("scheduled", "succeeded", task_id(NS, "a", T0)),
    ]
    assert shown["fires"][1]["error"] == "ValueError: bad input"
    assert shown["fires"][1]["lateness_s"] == 1.25
    # Only job a's: b's open gap is not listed.
    assert [(m["first"], m["last"], m["count"], m["reason"]) for m in shown["missed"]] == [
        (slot_text(T0 - 600), slot_text(T0 - 120), 9, "outbox_full"),
    ]
    assert shown["unreadable"] == []


def test_the_last_ten_fires_newest_first_and_an_open_gap(
    config: Path, redis_server: RedisServer
) -> None:
    client = redis_server.client()
    for minute in range(10, 22):
        slot = T0 + minute * 60
        ran(client, "b", fire(client, "b", slot, 100), slot * 1000 + 100, "succeeded")
    shown = run_json(config, "jobs", "show", "b")
    assert [f["slot"] for f in shown["fires"]] == [
        slot_text(T0 + m * 60) for m in range(21, 11, -1)
    ]
    assert {f["outcome"] for f in shown["fires"]} == {"succeeded"}
    assert [(m["first"], m["count"], m["open"]) for m in shown["missed"]] == [
        (slot_text(T0 + 600), 2, True),
    ]
    assert shown["definition"]["timezone"] == "Europe/Paris"
    assert shown["next_slots"][0] == "2027-01-15T10:05:00+01:00"  # in the job's zone
    assert (shown["paused"], shown["pause"], shown["watermark"]) == (False, None, None)


def test_the_text_says_since_when_and_why_a_job_is_paused(
    config: Path, redis_server: RedisServer
) -> None:
    client = redis_server.client()
    client.sadd(KEYS.paused, "a")
    client.hset(KEYS.pause_info, "a", json.dumps({"since": T0 + 130.5, "reason": "db move",
                                                  "watermark": None}))  # fmt: skip
    result = run(config, "jobs", "show", "a")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert (
        "  paused:       paused since 2027-01-15T08:02:10.500Z (db move); 0 slots skipped so "
        "far: `resume --catchup` sends them, `resume` records them as skipped"
    ) in lines
    assert "  misfire_grace: 1m30s" in lines
    fires = lines.index("last fires:")
    assert lines[fires + 1].split()[:4] == ["SLOT", "KIND", "OUTCOME", "LATE"]
    assert lines[fires + 3].split() == [
        "2027-01-15T08:01:00Z", "scheduled", "failed", "1.25s", "1.50s", "w1@host",
        task_id(NS, "a", T0 + 60), "ValueError:", "bad", "input",
    ]  # fmt: skip


def test_garbled_state_is_reported_and_the_rest_shown(
    config: Path, redis_server: RedisServer
) -> None:
    client = redis_server.client()
    client.hset(KEYS.watermarks, "a", "soon")
    client.hset(KEYS.pause_info, "a", "{not json")
    client.set(KEYS.last_success, "a string")
    client.xadd(KEYS.reports("a"), {"event": "started"}, id=f"{(T0 + 500) * 1000}-0")
    shown = run_json(config, "jobs", "show", "a")
    assert shown["unreadable"] == [
        {
            "key": KEYS.reports("a"),
            "found": "a report with task_id ''",
            "field": f"{(T0 + 500) * 1000}-0",
        },
        {"key": KEYS.watermarks, "found": "'soon', not a slot", "field": "a"},
        {"key": KEYS.pause_info, "found": "'{not json', not a pause record", "field": "a"},
        {"key": KEYS.last_success, "found": "a string, not a hash"},
    ]
    assert (shown["watermark"], shown["pause"], shown["last_success"]) == (None, None, None)
    assert len(shown["fires"]) == 3
    text = run(config, "jobs", "show", "a")
    assert text.exit_code == 0
    assert text.stdout.splitlines()[-4:] == [
        f"unreadable: {KEYS.reports('a')} field {(T0 + 500) * 1000}-0 holds a report with "
        "task_id ''",
        f"unreadable: {KEYS.watermarks} field a holds 'soon', not a slot",
        f"unreadable: {KEYS.pause_info} field a holds '{{not json', not a pause record",
        f"unreadable: {KEYS.last_success} holds a string, not a hash",
    ]


def test_errors_are_one_line_with_their_exit_code(config: Path, tmp_path: Path) -> None:
    unknown = run(config, "jobs", "show", "nope")
    assert (unknown.exit_code, unknown.stdout) == (2, "")
    assert (
        unknown.stderr == f"scheduler: no job named 'nope' in {config} nor among the runtime jobs\n"
    )
    (tmp_path / "closed").mkdir()
    down = run(write_config(tmp_path / "closed", "redis://127.0.0.1:1/0"), "jobs", "show", "a")
    assert down.exit_code == 1
    [line] = down.stderr.splitlines()
    assert line.startswith("scheduler: cannot reach Redis at redis://127.0.0.1:1/0: ")


def test_runs_whose_fire_left_the_shared_history_still_show_from_their_reports(
    config: Path, redis_server: RedisServer
) -> None:
    """The history stream keeps the newest 10,000 entries of all jobs; each job keeps its own
    reports. A run known only from its reports is shown, without an enqueue time."""
    client = redis_server.client()
    old_slot = T0 - 86_400
    ident = task_id(NS, "b", old_slot)  # b has no reports yet
    ran(client, "b", ident, old_slot * 1000 + 300, "succeeded", slot=slot_text(old_slot))
    shown = run_json(config, "jobs", "show", "b")
    [old] = [f for f in shown["fires"] if f["task_id"] == ident]
    assert (old["slot"], old["outcome"], old["duration_s"], old["enqueued_at"]) == (
        slot_text(old_slot), "succeeded", 1.5, None,
    )  # fmt: skip
    history = run_json(config, "history", "b")
    assert ident in [row["task_id"] for row in history]
