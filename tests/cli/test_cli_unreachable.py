"""Every command that needs Redis says so in one line and exits 1 when it cannot reach it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from scheduler.cli import app
from tests.conftest import free_port

COMMANDS = [
    ["status"],
    ["status", "--json"],
    ["jobs", "list"],
    ["jobs", "list", "--json"],
    ["jobs", "show", "tick"],
    ["jobs", "missed"],
    ["history"],
    ["history", "tick", "--json"],
    ["trigger", "tick"],
    ["backfill", "tick", "--from", "2026-01-01T00:00:00Z", "--to", "2026-01-01T00:10:00Z"],
    ["pause", "tick"],
    ["resume", "--all"],
    ["jobs", "add", "new", "--task", "t", "--every", "1m"],
    ["jobs", "edit", "new", "--every", "2m"],
    ["jobs", "remove", "new"],
    ["next", "not-in-the-config"],
    ["plan"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_unreachable_redis_is_one_line_and_exit_1(tmp_path: Path, command: list[str]) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    config = tmp_path / "scheduler.toml"
    config.write_text(
        f'[scheduler]\nredis_url = "{url}"\n\n[jobs.tick]\ntask = "t"\nevery = "1m"\n'
    )
    result = CliRunner().invoke(app, [*command, "--config", str(config)])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith(f"scheduler: cannot reach Redis at {url}: ")
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
