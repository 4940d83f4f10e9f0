"""`scheduler status` against a real redis-server: exit codes 0 / 3 / 1, the --json shape, and
config drift between nodes flagged with the jobs that differ. Plus `--version` and shell
completion on the app as scheduler/cli/__init__.py builds it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import redis
import typer
from typer.testing import CliRunner

from scheduler import __version__
from scheduler.cli import about, plan, status
from scheduler.config import Config, load_config
from scheduler.connections import tzdata_version
from scheduler.store.configs import Publication
from scheduler.store.keys import Keys
from tests.configs import config_file
from tests.conftest import RedisServer, free_port

NS = "st"


def make_app() -> typer.Typer:
    """The app as scheduler/cli/__init__.py builds it (with the lines this work adds)."""
    app = typer.Typer(
        help="A highly available cron for Celery.",
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
    )
    app.callback()(about.app_options)
    app.command()(status.status)
    app.command()(plan.plan)
    return app


APP = make_app()


def invoke(*args: str) -> Any:
    return CliRunner().invoke(APP, list(args), prog_name="scheduler")


def write_config(directory: Path, redis_url: str, jobs: str, name: str) -> Config:
    text = f'[scheduler]\nredis_url = "{redis_url}"\nnamespace = "{NS}"\n\n{jobs}'
    return load_config(config_file(directory, text, name))


A_JOBS = (
    '[jobs.a]\ntask = "jobs.examples.ping"\ncron = "0 9 * * *"\n\n'
    '[jobs.b]\ntask = "jobs.examples.ping"\nevery = "1m"\n'
)
B_JOBS = (
    '[jobs.a]\ntask = "jobs.examples.ping"\ncron = "0 10 * * *"\n\n'
    '[jobs.c]\ntask = "jobs.examples.ping"\nevery = "1m"\n'
)


def node_record(r: redis.Redis, node_id: str, config: Config, leader: bool) -> None:
    now_s = r.time()[0]
    record = {
        "node_id": node_id, "host": f"host-{node_id}", "pid": 100, "version": __version__,
        "seen_at": now_s, "clock_offset_ms": 0.4, "clock_ok": True, "tzdata": "2025.2",
        "config_hash": config.hash, "leader": leader, "jobs": len(config.jobs),
    }  # fmt: skip
    r.hset(f"{NS}:nodes", node_id, json.dumps(record))


def take_lease(r: redis.Redis, node_id: str, token: int = 42) -> None:
    r.set(f"{NS}:lease", f"{token} 0123abcd {node_id}", px=60_000)


def publish(r: redis.Redis, config: Config) -> None:
    assert Publication(r, Keys(NS), config.hash, config.jobs).step(1.0)


@pytest.fixture
def configs(tmp_path: Path, redis_server: RedisServer) -> tuple[Config, Config]:
    return (
        write_config(tmp_path, redis_server.url, A_JOBS, "a.toml"),
        write_config(tmp_path, redis_server.url, B_JOBS, "b.toml"),
    )


def test_no_leader_exits_3_table_and_json(
    configs: tuple[Config, Config], redis_server: RedisServer
) -> None:
    a, _ = configs
    node_record(redis_server.client(), "n1", a, leader=False)
    shown = invoke("status", "-c", str(a.path))
    assert shown.exit_code == 3, shown.output
    assert shown.stdout.splitlines()[0].startswith("leader: (none)  token: -")
    as_json = invoke("status", "--json", "-c", str(a.path))
    assert as_json.exit_code == 3, as_json.output
    data = json.loads(as_json.stdout)
    assert data["leader"] is None
    assert data["fencing_token"] is None
    assert data["leader_config_hash"] is None
    assert [n["node_id"] for n in data["nodes"]] == ["n1"]
    assert data["nodes"][0]["config_drift"] is None  # no leader to differ from
    assert data["drift"] == []


def test_a_leader_exits_0_and_json_has_every_field(
    configs: tuple[Config, Config], redis_server: RedisServer
) -> None:
    a, _ = configs
    r = redis_server.client()
    node_record(r, "n1", a, leader=True)
    take_lease(r, "n1")
    result = invoke("status", "--json", "-c", str(a.path))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in ("leader", "warnings", "fencing_token", "lease_left_ms", "namespace",
                "config_hash", "tzdata", "version", "broker", "atomic_enqueue", "outbox",
                "state_lost", "quarantined", "unreadable", "nodes", "drift"):  # fmt: skip
        assert key in data, key
    assert (data["leader"], data["fencing_token"]) == ("n1", 42)
    assert 0 < data["lease_left_ms"] <= 60_000
    assert data["leader_config_hash"] == a.hash
    assert data["tzdata"] == tzdata_version()
    (node,) = data["nodes"]
    assert {k: node[k] for k in ("node_id", "host", "pid", "config_hash", "clock_offset_ms",
                                 "clock_ok", "version", "tzdata", "config_drift")} == {
        "node_id": "n1", "host": "host-n1", "pid": 100, "config_hash": a.hash,
        "clock_offset_ms": 0.4, "clock_ok": True, "version": __version__, "tzdata": "2025.2",
        "config_drift": False,
    }  # fmt: skip
    assert 0 <= node["seen_ago_s"] <= 2
    assert data["drift"] == []
    assert data["warnings"] == []


def test_a_node_with_another_config_is_flagged_with_the_jobs_that_differ(
    configs: tuple[Config, Config], redis_server: RedisServer
) -> None:
    a, b = configs
    r = redis_server.client()
    node_record(r, "n1", a, leader=True)
    node_record(r, "n2", b, leader=False)
    take_lease(r, "n1")
    publish(r, a)
    publish(r, b)
    shown = invoke("status", "-c", str(a.path))
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    warning = (
        f"WARNING: config drift: n2 runs config {b.hash} (leader {a.hash}): jobs added: c; "
        "removed: b; changed: a (cron)"
    )
    assert warning in lines
    header = next(line for line in lines if line.startswith("NODE ID"))
    assert header.split() == ["NODE", "ID", "HOST", "PID", "VERSION", "LEADER", "SEEN", "AGO",
                              "S", "CLOCK", "OFFSET", "MS", "CLOCK", "OK", "CONFIG", "HASH",
                              "DRIFT", "TZDATA"]  # fmt: skip
    rows = {line.split()[0]: line for line in lines[lines.index(header) + 1 :]}
    assert "DRIFT" in rows["n2"].split()
    assert "DRIFT" not in rows["n1"].split()
    data = json.loads(invoke("status", "--json", "-c", str(a.path)).stdout)
    assert {n["node_id"]: n["config_drift"] for n in data["nodes"]} == {"n1": False, "n2": True}
    (entry,) = data["drift"]
    assert entry == {
        "node_id": "n2", "config_hash": b.hash, "leader_config_hash": a.hash, "known": True,
        "added": ["c"], "removed": ["b"],
        "changed": [{"job": "a", "fields": [
            {"field": "cron", "old": "0 9 * * *", "new": "0 10 * * *"}]}],
        "summary": warning.removeprefix("WARNING: "),
    }  # fmt: skip


def test_drift_without_published_jobs_says_what_is_missing(
    configs: tuple[Config, Config], redis_server: RedisServer
) -> None:
    a, b = configs
    r = redis_server.client()
    node_record(r, "n1", a, leader=True)
    node_record(r, "n2", b, leader=False)
    take_lease(r, "n1")
    publish(r, a)
    r.set(f"{NS}:config:{b.hash}", "garbage")
    result = invoke("status", "-c", str(a.path))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert (
        f"WARNING: config drift: n2 runs config {b.hash} (leader {a.hash}): which jobs differ "
        f"is unknown (config {b.hash} is unreadable)"
    ) in lines
    assert f"unreadable: {NS}:config:{b.hash} holds a string, not a hash" in lines
    r.delete(f"{NS}:config:{a.hash}", f"{NS}:config:{b.hash}")
    data = json.loads(invoke("status", "--json", "-c", str(a.path)).stdout)
    assert data["drift"][0]["known"] is False
    assert data["drift"][0]["summary"].endswith(
        f"(config {a.hash} is not published; config {b.hash} is not published)"
    )


def test_a_garbled_fingerprint_is_reported_and_the_rest_compared(
    configs: tuple[Config, Config], redis_server: RedisServer
) -> None:
    a, b = configs
    r = redis_server.client()
    node_record(r, "n1", a, leader=True)
    node_record(r, "n2", b, leader=False)
    take_lease(r, "n1")
    publish(r, a)
    publish(r, b)
    r.hset(f"{NS}:config:{a.hash}", "b", "[1, NaN")
    data = json.loads(invoke("status", "--json", "-c", str(a.path)).stdout)
    assert data["unreadable"] == [
        {"key": f"{NS}:config:{a.hash}", "field": "b", "found": "'[1, NaN', not JSON"}
    ]
    assert (data["drift"][0]["added"], data["drift"][0]["removed"]) == (["c"], [])


def test_redis_unreachable_is_one_line_exit_1(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"redis://127.0.0.1:{free_port()}/0", A_JOBS, "x.toml")
    for args in (["status"], ["status", "--json"]):
        result = CliRunner().invoke(APP, [*args, "-c", str(config.path)])
        assert result.exit_code == 1
        assert result.stdout == ""
        (line,) = result.stderr.splitlines()
        assert line.startswith("scheduler: cannot reach Redis at redis://127.0.0.1:")


def test_version() -> None:
    result = invoke("--version")
    assert (result.exit_code, result.stdout) == (0, f"scheduler {__version__}\n")


def test_shell_completion_prints_a_script(monkeypatch: pytest.MonkeyPatch) -> None:
    # typer detects the shell from the parent process unless told not to (typer's docs).
    monkeypatch.setitem(os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    result = invoke("--show-completion", "bash")
    assert result.exit_code == 0, result.output
    assert "complete -o default -F _scheduler_completion scheduler" in result.stdout
    assert "_SCHEDULER_COMPLETE=complete_bash" in result.stdout
    helped = invoke("--help")
    assert "--install-completion" in helped.stdout
    assert "--version" in helped.stdout
