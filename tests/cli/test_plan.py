"""`scheduler plan --config NEW` against a real redis-server: the leader's published config (or
--live FILE) as the live one; jobs added, removed, changed field by field; next slots old vs
new across Europe/Berlin's spring-forward night (2026-03-29); what a reload does with a
watermark; the --json shape; the errors (bad NEW: exit 2; no live config: exit 1)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import typer
from typer.testing import CliRunner

from scheduler.cli import common, plan
from scheduler.config import Config, load_config
from scheduler.store.configs import Publication
from scheduler.store.keys import Keys
from tests.clocks import ManualClock
from tests.configs import config_file
from tests.conftest import RedisServer

NS = "pl"
# Saturday 2026-03-28 12:00:30Z; that night Berlin skips 02:00-03:00.
NOW_S = datetime(2026, 3, 28, 12, 0, 30, tzinfo=UTC).timestamp()

APP = typer.Typer()
APP.command()(plan.plan)
APP.command("other")(lambda: None)  # two commands: `plan` stays a sub-command, as in the app

LIVE = """
[jobs.a]
task = "jobs.examples.ping"
cron = "0 2 * * *"
timezone = "Europe/Berlin"

[jobs.b]
task = "jobs.examples.ping"
every = "1m"

[jobs.d]
task = "jobs.examples.ping"
cron = "0 12 * * *"

[jobs.e]
task = "jobs.examples.ping"
every = "1h"
"""
NEW = """
[jobs.a]
task = "jobs.examples.ping"
cron = "30 2 * * *"
timezone = "Europe/Berlin"
queue = "night"

[jobs.c]
task = "jobs.examples.ping"
cron = "H 3 * * *"
timezone = "Europe/Berlin"

[jobs.d]
task = "jobs.examples.ping"
cron = "0 12 * * *"

[jobs.e]
task = "jobs.examples.ping"
every = "30m"
"""


def write(directory: Path, redis_url: str, jobs: str, name: str) -> Config:
    text = f'[scheduler]\nredis_url = "{redis_url}"\nnamespace = "{NS}"\n{jobs}'
    return load_config(config_file(directory, text, name))


def lead_with(r: redis.Redis, config: Config, node_id: str = "n1") -> None:
    """A leader's lease and node record, and its published config."""
    r.set(f"{NS}:lease", f"9 0123abcd {node_id}", px=60_000)
    record = {"node_id": node_id, "seen_at": r.time()[0], "config_hash": config.hash}
    r.hset(f"{NS}:nodes", node_id, json.dumps(record))
    assert Publication(r, Keys(NS), config.hash, config.jobs).step(1.0)


def invoke(*args: str) -> Any:
    return CliRunner().invoke(APP, ["plan", *args])


@pytest.fixture
def live_and_new(
    tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> tuple[Config, Config]:
    monkeypatch.setattr(common, "clock", ManualClock(wall_s=NOW_S))
    live = write(tmp_path, redis_server.url, LIVE, "live.toml")
    new = write(tmp_path, redis_server.url, NEW, "new.toml")
    r = redis_server.client()
    r.hset(f"{NS}:watermarks", "e", int(NOW_S) - 30 - 3600)  # 11:00:00Z, fired on time
    return live, new


def test_the_plan_against_the_leaders_published_config(
    live_and_new: tuple[Config, Config], redis_server: RedisServer
) -> None:
    live, new = live_and_new
    lead_with(redis_server.client(), live)
    result = invoke("--config", str(new.path))
    assert result.exit_code == 0, result.output
    c_slot = json.loads(invoke("--config", str(new.path), "--json").stdout)["added"][0]["next"]
    assert result.stdout.splitlines() == [
        f"live: config {live.hash} published by the leader n1 (4 jobs)",
        f"new:  config {new.hash} from {new.path} (4 jobs)",
        "+ c  added",
        '    cron "H 3 * * *" in Europe/Berlin, task jobs.examples.ping',
        f"    next: {'  '.join(c_slot)}",
        "- b  removed",
        "~ a  changed",
        '    cron: "0 2 * * *" -> "30 2 * * *"',
        '    queue: "celery" -> "night"',
        # 02:00 and 02:30 do not exist on 2026-03-29 in Berlin: both fire at 03:00 CEST.
        "    next, live: 2026-03-29T03:00:00+02:00  2026-03-30T02:00:00+02:00  "
        "2026-03-31T02:00:00+02:00",
        "    next, new : 2026-03-29T03:00:00+02:00  2026-03-30T02:30:00+02:00  "
        "2026-03-31T02:30:00+02:00",
        "~ e  changed",
        '    every: "1h" -> "30m"',
        "    next, live: 2026-03-28T13:00:00+00:00  2026-03-28T14:00:00+00:00  "
        "2026-03-28T15:00:00+00:00",
        "    next, new : 2026-03-28T12:30:00+00:00  2026-03-28T13:00:00+00:00  "
        "2026-03-28T13:30:00+00:00",
        "    on reload (watermark 2026-03-28T11:00:00Z): fires 1 due slot(s) at once: "
        "2026-03-28T12:00:00Z; records 1 slot(s) 2026-03-28T11:30:00Z .. "
        "2026-03-28T11:30:00Z as missed (misfire_grace)",
        "unchanged: 1 jobs",
    ]
    # H resolves from the job's name: one minute of the 03:00 hour, the same every day.
    assert [slot[10:] for slot in c_slot] == [c_slot[0][10:]] * 3
    assert c_slot[0].startswith("2026-03-29T03:")
    assert c_slot[0].endswith(":00+02:00")


def test_the_json_shape(live_and_new: tuple[Config, Config], redis_server: RedisServer) -> None:
    live, new = live_and_new
    lead_with(redis_server.client(), live)
    result = invoke("--config", str(new.path), "--json", "-n", "2")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["live"] == {"source": "leader", "config_hash": live.hash, "path": None,
                            "leader": "n1", "jobs": 4}  # fmt: skip
    assert data["new"] == {"config_hash": new.hash, "path": str(new.path), "jobs": 4}
    assert data["now"] == "2026-03-28T12:00:30Z"
    assert [entry["job"] for entry in data["added"]] == ["c"]
    assert data["added"][0]["definition"] == new.jobs["c"].fingerprint()
    assert (data["added"][0]["watermark"], data["added"][0]["on_reload"]) == (None, None)
    assert data["removed"] == [{"job": "b", "definition": live.jobs["b"].fingerprint()}]
    a, e = data["changed"]
    assert a == {
        "job": "a",
        "fields": [{"field": "cron", "old": "0 2 * * *", "new": "30 2 * * *"},
                   {"field": "queue", "old": "celery", "new": "night"}],
        "next_live": ["2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"],
        "next_new": ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"],
        "watermark": None, "on_reload": None,
    }  # fmt: skip
    assert e["watermark"] == "2026-03-28T11:00:00Z"
    assert e["on_reload"] == {
        "fire": ["2026-03-28T12:00:00Z"],
        "missed": [{"first": "2026-03-28T11:30:00Z", "last": "2026-03-28T11:30:00Z",
                    "count": 1, "reason": "misfire_grace"}],
    }  # fmt: skip
    assert (data["unchanged"], data["notes"], data["problems"], data["unreadable"]) == (
        1,
        [],
        [],
        [],
    )


def test_no_change_says_so(live_and_new: tuple[Config, Config], redis_server: RedisServer) -> None:
    live, _ = live_and_new
    lead_with(redis_server.client(), live)
    result = invoke("--config", str(live.path))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[2:] == ["no job changes (4 unchanged)"]


def test_without_a_leader_it_needs_live(
    live_and_new: tuple[Config, Config], redis_server: RedisServer
) -> None:
    live, new = live_and_new
    refused = invoke("--config", str(new.path))
    assert refused.exit_code == 1
    assert refused.stderr == (
        "scheduler: no live config: no leader holds the lease; give the live config file "
        "with --live FILE\n"
    )
    result = invoke("--config", str(new.path), "--live", str(live.path), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["notes"] == [f"no leader holds the lease; comparing with --live {live.path}"]
    assert data["live"]["source"] == "file"
    assert [c["job"] for c in data["changed"]] == ["a", "e"]


def test_an_unpublished_leader_config_and_a_live_file_that_is_not_the_leaders(
    live_and_new: tuple[Config, Config], redis_server: RedisServer
) -> None:
    live, new = live_and_new
    r = redis_server.client()
    lead_with(r, live)
    r.delete(f"{NS}:config:{live.hash}")
    refused = invoke("--config", str(new.path))
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"scheduler: no live config: the leader's config {live.hash} is not published in "
        "Redis; give the live config file with --live FILE\n"
    )
    lead_with(r, live)
    other = invoke("--config", str(new.path), "--config-live", str(new.path))
    assert other.exit_code == 0, other.output
    assert (
        f"note: the leader n1 runs config {live.hash}, not --live {new.path} (config {new.hash})"
    ) in other.stdout.splitlines()


def test_a_garbled_published_job_is_reported_not_a_crash(
    live_and_new: tuple[Config, Config], redis_server: RedisServer
) -> None:
    live, new = live_and_new
    r = redis_server.client()
    lead_with(r, live)
    r.hset(f"{NS}:config:{live.hash}", "a", json.dumps({"kind": "cron", "schedule": "99 * * * *",
                                                        "task": "t"}))  # fmt: skip
    r.hset(f"{NS}:config:{live.hash}", "e", "{not json")
    r.hset(f"{NS}:watermarks", "a", "soon")
    result = invoke("--config", str(new.path))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "    next, live: unknown" in lines
    assert "+ e  added" in lines  # its published fingerprint cannot be read
    assert (
        "live job not rebuilt: published config: jobs.a.cron: minute 99 is out of range 0-59"
    ) in lines
    assert f"unreadable: {NS}:config:{live.hash} field e holds '{{not json', not JSON" in lines
    assert f"unreadable: {NS}:watermarks field a holds 'soon', not a whole number of seconds" in (
        lines
    )


def test_a_bad_new_config_exits_2_with_its_lines(tmp_path: Path, redis_server: RedisServer) -> None:
    path = config_file(
        tmp_path,
        f'[scheduler]\nredis_url = "{redis_server.url}"\n\n[jobs.x]\ntask = "t"\ncron = "61 * * * *"\n',
    )
    result = invoke("--config", str(path))
    assert result.exit_code == 2
    assert result.stderr == "scheduler.toml: jobs.x.cron: minute 61 is out of range 0-59\n"
