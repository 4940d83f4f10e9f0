"""`jobs list` takes "now" from the CLI's clock, so a test can set it."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scheduler import cli
from scheduler.cli import common
from scheduler.cli.watch import watch
from tests.clocks import ManualClock
from tests.configs import config_file
from tests.conftest import RedisServer


def test_next_run_comes_from_the_injected_clock(
    tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_file(
        tmp_path,
        f'[scheduler]\nredis_url = "{redis_server.url}"\nnamespace = "cli-clock"\n\n'
        '[jobs.tick]\ntask = "jobs.examples.ping"\nevery = "90s"\n'
        "start = 2026-01-01T00:00:00Z\n",
    )
    # 2026-01-01T00:02:00Z: the next 90 s slot is 00:03:00.
    monkeypatch.setattr(common, "clock", ManualClock(wall_s=1_767_225_720.0))
    result = CliRunner().invoke(cli.app, ["jobs", "list", "--json", "--config", str(config)])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["next_run"] == "2026-01-01T00:03:00+00:00"


def test_the_table_reads_like_list_timers(
    tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_file(
        tmp_path,
        f'[scheduler]\nredis_url = "{redis_server.url}"\nnamespace = "cli-table"\n\n'
        '[jobs.report]\ntask = "jobs.examples.ping"\ncron = "0 9 * * 1-5"\n'
        'timezone = "Europe/Berlin"\n\n'
        '[jobs.tick]\ntask = "jobs.examples.ping"\nevery = "90s"\n',
    )
    client = redis_server.client()
    client.hset("cli-table:last_fire", "tick", "1767225630 7")  # 00:00:30Z, 90 s before now
    client.hset("cli-table:outcomes", "tick", json.dumps({"outcome": "failed"}))
    monkeypatch.setattr(common, "clock", ManualClock(wall_s=1_767_225_720.0))
    result = CliRunner().invoke(cli.app, ["jobs", "list", "--config", str(config)])
    assert result.exit_code == 0, result.output
    header, tick, report = result.stdout.splitlines()
    assert header.split() == [
        "NAME", "SCHEDULE", "TZ", "NEXT", "LEFT", "LAST", "PASSED", "OUTCOME", "PAUSED", "SOURCE",
    ]  # fmt: skip
    assert tick.split("  ")[0] == "tick"
    for text in ("Every 1 minute 30 seconds (1m30s)", "Thu 2026-01-01 00:03:00 UTC", "in 1 min",
                 "Thu 2026-01-01 00:00:30 UTC", "1 min ago", "failed", "config"):  # fmt: skip
        assert text in tick, (text, tick)
    # Not a terminal: no colour codes.
    assert "\x1b[" not in result.stdout
    for text in ("At 09:00, Monday through Friday (0 9 * * 1-5)", "Europe/Berlin",
                 "Thu 2026-01-01 09:00:00 CET", "in 7 h 58 min"):  # fmt: skip
        assert text in report, (text, report)


def test_watch_redraws_until_its_rounds_are_done(capsys: pytest.CaptureFixture[str]) -> None:
    frames = iter(["one", "two"])
    watch(lambda: next(frames), 0.2, rounds=2)
    assert capsys.readouterr().out == "one\ntwo\n"


def test_runtime_jobs_are_listed_with_their_source(
    tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_file(
        tmp_path,
        f'[scheduler]\nredis_url = "{redis_server.url}"\nnamespace = "cli-source"\n\n'
        '[jobs.tick]\ntask = "jobs.examples.ping"\nevery = "90s"\n',
    )
    monkeypatch.setattr(common, "clock", ManualClock(wall_s=1_767_225_720.0))
    runner = CliRunner()
    added = runner.invoke(
        cli.app, ["jobs", "add", "nightly", "--task", "t", "--cron", "0 3 * * *", "-c", str(config)]
    )
    assert added.exit_code == 0, added.output
    shadow = runner.invoke(
        cli.app, ["jobs", "add", "tick", "--task", "t", "--every", "5s", "-c", str(config)]
    )
    assert shadow.exit_code == 2
    listed = runner.invoke(cli.app, ["jobs", "list", "--json", "-c", str(config)])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["source"], r["next_run"]) for r in rows] == [
        ("tick", "config", "2026-01-01T00:03:00+00:00"),
        ("nightly", "runtime", "2026-01-01T03:00:00+00:00"),
    ]
    shown = runner.invoke(cli.app, ["next", "nightly", "-n", "1", "-c", str(config)])
    assert shown.stdout.strip() != ""


def test_open_alerts_show_in_jobs_list_and_status(
    tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_file(
        tmp_path,
        f'[scheduler]\nredis_url = "{redis_server.url}"\nnamespace = "cli-alert"\n\n'
        '[jobs.tick]\ntask = "jobs.examples.ping"\nevery = "90s"\nalert_after = "1h"\n',
    )
    redis_server.client().hset(
        "cli-alert:alerts", "tick", json.dumps({"since": 1_767_225_600, "reason": "no_success"})
    )
    monkeypatch.setattr(common, "clock", ManualClock(wall_s=1_767_225_720.0))
    runner = CliRunner()
    [row] = json.loads(runner.invoke(cli.app, ["jobs", "list", "--json", "-c", str(config)]).stdout)
    assert row["alert"] == "no_success"
    header = runner.invoke(cli.app, ["jobs", "list", "-c", str(config)]).stdout.splitlines()[0]
    assert header.split()[-1] == "ALERT"
    status = runner.invoke(cli.app, ["status", "-c", str(config)])
    assert status.exit_code == 3  # nobody leads here
    assert "ALERT: job tick: no_success since 2026-01-01T00:00:00Z" in status.stdout.splitlines()
    as_json = json.loads(runner.invoke(cli.app, ["status", "--json", "-c", str(config)]).stdout)
    assert as_json["alerts"] == {"tick": {"since": 1_767_225_600, "reason": "no_success"}}


def test_colour_only_on_a_terminal(tmp_path: Path, redis_server: RedisServer) -> None:
    """On a real terminal (a pseudo-terminal here) a failed job's row is red; NO_COLOR and a
    pipe get plain text."""
    config = config_file(
        tmp_path,
        f'[scheduler]\nredis_url = "{redis_server.url}"\nnamespace = "cli-colour"\n\n'
        '[jobs.tick]\ntask = "jobs.examples.ping"\nevery = "90s"\n',
    )
    client = redis_server.client()
    client.hset("cli-colour:last_fire", "tick", "1767225630 7")
    client.hset("cli-colour:outcomes", "tick", json.dumps({"outcome": "failed"}))

    def on_a_terminal(**env: str) -> str:
        leader, follower = pty.openpty()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "scheduler", "jobs", "list", "-c", str(config)],
                stdout=follower, stderr=subprocess.PIPE, timeout=60, check=False,
                env={"PATH": os.environ["PATH"], **env},
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            os.close(follower)
            follower = -1
            chunks = []
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the terminal is closed: all was read
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks).decode()
        finally:
            os.close(leader)
            if follower >= 0:
                os.close(follower)

    red = "\x1b[31m"
    [row] = [line for line in on_a_terminal().splitlines() if "tick" in line]
    assert row.startswith(red), repr(row)
    assert red not in on_a_terminal(NO_COLOR="1")
