"""CLI commands that need no Redis: validate and next (exit codes, output shapes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scheduler.cli import app
from tests.configs import config_file

CONFIG = """
[scheduler]
timezone = "America/New_York"

[jobs.nightly]
task = "jobs.examples.ping"
cron = "30 2 * * *"

[jobs.tick]
task = "jobs.examples.ping"
every = "90s"
start = 2026-01-01T00:00:00Z
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return config_file(tmp_path, CONFIG)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_validate_ok(config: Path) -> None:
    code, out, _ = run("validate", "--config", str(config))
    assert code == 0
    assert out.startswith(f"{config}: ok, 2 jobs, config hash ")


def test_validate_bad_config_exits_2_with_one_line_per_problem(tmp_path: Path) -> None:
    bad = '[jobs.x]\ntask = "t"\ncron = "0 0 * * 8"\n[jobs.y]\ntask = "t"\n'
    path = config_file(tmp_path, bad, "bad.toml")
    code, out, err = run("validate", "--config", str(path))
    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        "bad.toml: jobs.x.cron: day-of-week 8 is out of range 0-7",
        "bad.toml: jobs.y: needs exactly one of cron, every, at (found none)",
    ]


def test_config_path_from_the_environment(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDULER_CONFIG", str(config))
    code, out, _ = run("validate")
    assert code == 0
    assert str(config) in out


def test_next_in_the_jobs_time_zone_across_spring_forward(config: Path) -> None:
    # 02:30 does not exist in New York on 2026-03-08: that day runs once right after the gap.
    code, out, _ = run(
        "next", "nightly", "-n", "3", "--after", "2026-03-06T12:00:00Z", "--json",
        "--config", str(config),
    )  # fmt: skip
    assert code == 0
    assert json.loads(out) == [
        "2026-03-07T02:30:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
    ]


def test_next_for_an_interval_job_with_a_local_after(config: Path) -> None:
    code, out, _ = run(
        "next", "tick", "-n", "2", "--after", "2026-01-01T00:00:00Z", "--config", str(config)
    )
    assert code == 0
    assert out.splitlines() == ["2025-12-31T19:01:30-05:00", "2025-12-31T19:03:00-05:00"]


def test_next_unknown_job_and_bad_after(config: Path) -> None:
    code, _, err = run("next", "nope", "--config", str(config))
    assert (code, err.strip()) == (
        2,
        f"scheduler: no job named 'nope' in {config} nor among the runtime jobs",
    )
    code, _, err = run("next", "tick", "--after", "tomorrow", "--config", str(config))
    assert (code, err.strip()) == (
        2,
        "scheduler: --after: expected an ISO 8601 instant, got 'tomorrow'",
    )
