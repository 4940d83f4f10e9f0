"""`jobs list` takes "now" from the CLI's clock, so a test can set it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scheduler import cli
from scheduler.cli import common
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
