"""`history`: fires across jobs, newest first, with what the workers reported; missed and
skipped slots with their reason; -n, --since, --failed, NAME; garbage read as unreadable lines.

The entries are written as their writers write them (the claim script, an operator's fire,
the worker hooks), at explicit stream ids, so every time shown is exact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
import typer
from typer.testing import CliRunner, Result

from scheduler.cli import common, history
from scheduler.store.keys import Keys
from scheduler.wire import slot_text, task_id
from tests.clocks import ManualClock
from tests.configs import config_file
from tests.conftest import RedisServer

NS = "cli-hist"
KEYS = Keys(NS)
T0 = 1_800_000_000  # 2027-01-15T08:00:00Z, a whole minute
NOW = T0 + 3600.0
ROW_KEYS = {
    "job", "kind", "slot", "task_id", "enqueued_at", "lateness_s", "outcome", "started_at",
    "duration_s", "attempts", "worker", "error", "reason", "first", "last", "count", "open",
    "token", "at", "unreadable",
}  # fmt: skip


def cli_app() -> typer.Typer:
    """The two commands as scheduler/cli/__init__.py registers them."""
    app = typer.Typer()
    jobs = typer.Typer()
    app.command("history")(history.history)
    jobs.command("show")(history.jobs_show)
    app.add_typer(jobs, name="jobs")
    return app


def write_config(directory: Path, redis_url: str) -> Path:
    return config_file(
        directory,
        f'[scheduler]\nredis_url = "{redis_url}"\nnamespace = "{NS}"\n\n'
        '[jobs.a]\ntask = "jobs.examples.ping"\nevery = "1m"\nstart = 2027-01-01T00:00:00Z\n'
        'misfire_grace = "90s"\noverlap = "skip"\nalert_after = "2h"\n\n'
        '[jobs.b]\ntask = "jobs.examples.hello"\ncron = "*/5 * * * *"\nargs = ["x"]\n'
        'timezone = "Europe/Paris"\n',
    )


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli_app(), [*args, "--config", str(config)])


def run_json(config: Path, *args: str) -> Any:
    result = run(config, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def fire(client: redis.Redis, job: str, slot_s: int, late_ms: int, **extra: str) -> str:
    """A history entry as the claim script (or, with kind and task_id, an operator) writes it;
    the fire's task id."""
    fields = {"job": job, "slot": str(slot_s), "token": extra.pop("token", "7"), **extra}
    client.xadd(KEYS.history, fields, id=f"{slot_s * 1000 + late_ms}-0")  # type: ignore[arg-type]
    return extra.get("task_id") or task_id(NS, job, slot_s)


def report(client: redis.Redis, job: str, ident: str, at_ms: int, event: str, **extra: str) -> None:
    """A worker report as lua/report_add.lua writes it."""
    fields = {"event": event, "slot": "", "task_id": ident, "kind": "scheduled",
              "worker": "w1@host", **extra}  # fmt: skip
    client.xadd(KEYS.reports(job), fields, id=f"{at_ms}-0")  # type: ignore[arg-type]


def ran(client: redis.Redis, job: str, ident: str, at_ms: int, end: str, **extra: str) -> None:
    """received, started, then `end` (with `extra`) 1.5 s later."""
    report(client, job, ident, at_ms + 10, "received")
    report(client, job, ident, at_ms + 20, "started")
    report(client, job, ident, at_ms + 1520, end, duration_s="1.500", **extra)


def populate(client: redis.Redis) -> None:
    """Job a: a fire that succeeded (T0), one that failed (T0+60), a manual fire (T0+90), a
    skipped slot (T0+120); job b: a fire never reported (T0+300, long ago); a missed range of
    a and an open gap of b."""
    ident = fire(client, "a", T0, 250)
    ran(client, "a", ident, T0 * 1000 + 250, "succeeded")
    ident = fire(client, "a", T0 + 60, 1250)
    ran(client, "a", ident, (T0 + 60) * 1000 + 1250, "failed", error="ValueError: bad input")
    fire(client, "a", T0 + 90, 0, kind="manual", task_id="man-1", token="")
    report(client, "a", "man-1", (T0 + 90) * 1000 + 30, "received", kind="manual")
    client.xadd(KEYS.history, {"job": "a", "slot": str(T0 + 120), "token": "7", "kind": "skipped",
                               "reason": "overlap"}, id=f"{(T0 + 120) * 1000 + 5}-0")  # fmt: skip
    fire(client, "b", T0 + 300, 40)
    client.xadd(KEYS.missed, {"job": "a", "first": str(T0 - 600), "last": str(T0 - 120),
                              "count": "9", "reason": "outbox_full", "token": "7"})  # fmt: skip
    client.hset(KEYS.missed_open, "b", f"{T0 + 600} {T0 + 900} 2 outbox_full")


@pytest.fixture
def config(tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(common, "clock", ManualClock(wall_s=NOW))
    populate(redis_server.client())
    return write_config(tmp_path, redis_server.url)


def test_json_rows_newest_first_with_outcomes_reasons_and_ranges(config: Path) -> None:
    rows = run_json(config, "history")
    assert all(set(row) == ROW_KEYS for row in rows)
    assert [(r["job"], r["kind"], r["slot"], r["outcome"]) for r in rows] == [
        ("b", "missed", slot_text(T0 + 600), "missed"),  # the open gap, at its last slot
        ("b", "scheduled", slot_text(T0 + 300), "unknown"),  # 55 min old, never reported
        ("a", "skipped", slot_text(T0 + 120), "skipped"),
        ("a", "manual", slot_text(T0 + 90), "received"),
        ("a", "scheduled", slot_text(T0 + 60), "failed"),
        ("a", "scheduled", slot_text(T0), "succeeded"),
        ("a", "missed", slot_text(T0 - 600), "missed"),
    ]
    gap, _, skipped, manual, failed, succeeded, missed = rows
    assert (gap["last"], gap["count"], gap["open"], gap["reason"]) == (
        slot_text(T0 + 900), 2, True, "outbox_full",
    )  # fmt: skip
    assert skipped["reason"] == "overlap"
    assert (manual["task_id"], manual["worker"], manual["lateness_s"]) == ("man-1", "w1@host", 0.0)
    assert failed == {
        "job": "a", "kind": "scheduled", "slot": "2027-01-15T08:01:00Z",
        "task_id": task_id(NS, "a", T0 + 60), "enqueued_at": "2027-01-15T08:01:01.250Z",
        "lateness_s": 1.25, "outcome": "failed", "started_at": "2027-01-15T08:01:01.270Z",
        "duration_s": 1.5, "attempts": 1, "worker": "w1@host", "error": "ValueError: bad input",
        "reason": None, "first": None, "last": None, "count": None, "open": None, "token": "7",
        "at": "2027-01-15T08:01:01.250Z", "unreadable": [],
    }  # fmt: skip
    assert (succeeded["error"], succeeded["duration_s"]) == (None, 1.5)
    assert (missed["first"], missed["last"], missed["count"]) == (
        slot_text(T0 - 600), slot_text(T0 - 120), 9,
    )  # fmt: skip


def test_failed_since_name_and_n_filter_the_rows(config: Path) -> None:
    [failed] = run_json(config, "history", "--failed")
    assert (failed["job"], failed["slot"]) == ("a", slot_text(T0 + 60))
    # NOW is T0 + 3600: "58m" ago is T0 + 120 s, so the skip is the oldest row kept.
    recent = run_json(config, "history", "--since", "58m")
    assert [r["slot"] for r in recent] == [slot_text(s) for s in (T0 + 600, T0 + 300, T0 + 120)]
    instant = run_json(config, "history", "--since", "2027-01-15T09:02:00+01:00")
    assert [r["slot"] for r in instant] == [slot_text(s) for s in (T0 + 600, T0 + 300, T0 + 120)]
    of_a = run_json(config, "history", "a", "-n", "2")
    assert [(r["job"], r["outcome"]) for r in of_a] == [("a", "skipped"), ("a", "received")]
    assert [r["outcome"] for r in run_json(config, "history", "b")] == ["missed", "unknown"]


def test_the_table(config: Path) -> None:
    result = run(config, "history", "a", "-n", "3")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["SLOT", "JOB", "KIND", "OUTCOME", "LATE", "DURATION", "WORKER",
                                "DETAIL"]  # fmt: skip
    assert lines[1].split() == ["2027-01-15T08:02:00Z", "a", "skipped", "skipped", "-", "-", "-",
                                "overlap"]  # fmt: skip
    assert lines[3].split() == ["2027-01-15T08:01:00Z", "a", "scheduled", "failed", "1.25s",
                                "1.50s", "w1@host", "ValueError:", "bad", "input"]  # fmt: skip
    assert len(lines) == 4


def test_garbage_is_reported_as_unreadable_lines_and_the_rest_is_shown(
    config: Path, redis_server: RedisServer
) -> None:
    client = redis_server.client()
    client.xadd(KEYS.history, {"slot": "1"}, id=f"{(T0 + 400) * 1000}-0")
    client.xadd(KEYS.history, {"job": "a", "slot": "soon\x1b[31m"}, id=f"{(T0 + 401) * 1000}-0")
    client.xadd(KEYS.history, {"job": "a", "slot": "1", "kind": "nonsense"},
                id=f"{(T0 + 402) * 1000}-0")  # fmt: skip
    client.xadd(KEYS.reports("a"), {"event": "exploded", "task_id": "x"},
                id=f"{(T0 + 403) * 1000}-0")  # fmt: skip
    client.set(KEYS.reports("b"), "not a stream")
    result = run(config, "history")
    assert result.exit_code == 0, result.output
    # Newest first, as the streams are read.
    assert result.stdout.splitlines()[-5:] == [
        f"unreadable: {KEYS.history} field {(T0 + 402) * 1000}-0 holds a history entry with kind "
        "'nonsense'",
        f"unreadable: {KEYS.history} field {(T0 + 401) * 1000}-0 holds a history entry with slot "
        "'soon\\x1b[31m'",
        f"unreadable: {KEYS.history} field {(T0 + 400) * 1000}-0 holds a history entry with job ''",
        f"unreadable: {KEYS.reports('b')} holds a string, not a stream",
        f"unreadable: {KEYS.reports('a')} field {(T0 + 403) * 1000}-0 holds a report with event "
        "'exploded'",
    ]
    rows = run_json(config, "history")
    assert [r["outcome"] for r in rows if r.get("job")] == [
        "missed", "unknown", "skipped", "received", "failed", "succeeded", "missed",
    ]  # fmt: skip
    assert len([r for r in rows if r["unreadable"]]) == 5


def test_a_history_key_of_another_type_is_one_unreadable_line(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    redis_server.client().hset(KEYS.history, "x", "y")
    result = run(write_config(tmp_path, redis_server.url), "history")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == [
        f"unreadable: {KEYS.history} holds a hash, not a stream"
    ]


def test_errors_are_one_line_with_their_exit_code(config: Path, tmp_path: Path) -> None:
    unknown = run(config, "history", "nope")
    assert (unknown.exit_code, unknown.stdout) == (2, "")
    assert (
        unknown.stderr == f"scheduler: no job named 'nope' in {config} nor among the runtime jobs\n"
    )
    since = run(config, "history", "--since", "yesterday")
    assert (since.exit_code, since.stderr) == (
        2, "scheduler: --since: expected an ISO 8601 instant or a duration like 2h, got "
        "'yesterday'\n",
    )  # fmt: skip
    (tmp_path / "closed").mkdir()
    down = run(write_config(tmp_path / "closed", "redis://127.0.0.1:1/0"), "history")
    assert down.exit_code == 1
    [line] = down.stderr.splitlines()
    assert line.startswith("scheduler: cannot reach Redis at redis://127.0.0.1:1/0: ")
