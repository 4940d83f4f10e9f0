"""The offline commands start without Celery or kombu, and read the pinned zone rules.

Each case runs the CLI in a fresh interpreter: this one has imported Celery long ago.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.configs import config_file

CONFIG = """
[scheduler]
timezone = "Europe/Berlin"

[jobs.nightly]
task = "jobs.examples.ping"
cron = "30 2 * * *"
"""

# Runs `main()` with the arguments after -c's program, then reports what it left behind: the
# CLI exits through SystemExit, so the report is written on the way out.
PROBE = """
import json, sys, zoneinfo
from scheduler.cli import main
sys.argv[0] = "scheduler"
try:
    main()
finally:
    loaded = sorted({name.split(".")[0] for name in sys.modules} & {"celery", "kombu"})
    report = {"loaded": loaded, "tzpath": list(zoneinfo.TZPATH)}
    print("probe:", json.dumps(report), file=sys.stderr)
"""


def run_cli(*args: str) -> tuple[int, str, dict[str, list[str]]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        # A host path the probe can tell apart from the pinned one (no path at all).
        env={"PATH": "/usr/bin:/bin", "PYTHONTZPATH": "/usr/share/zoneinfo"},
        cwd=Path(__file__).resolve().parents[2],
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("probe: ")]
    assert lines, result.stderr
    report = json.loads(lines[-1].removeprefix("probe: "))
    return result.returncode, result.stdout, report


@pytest.mark.parametrize(
    "command",
    [
        ["validate"],
        ["next", "nightly", "-n", "2", "--after", "2026-03-28T12:00:00Z"],
    ],
)
def test_offline_commands_import_neither_celery_nor_kombu(
    tmp_path: Path, command: list[str]
) -> None:
    config = config_file(tmp_path, CONFIG)
    code, out, report = run_cli(*command, "-c", str(config))
    assert code == 0, out
    assert out
    assert report["loaded"] == []


def test_main_reads_the_pinned_tzdata_not_the_hosts(tmp_path: Path) -> None:
    config = config_file(tmp_path, CONFIG)
    code, out, report = run_cli(
        "next", "nightly", "-n", "2", "--after", "2026-03-28T12:00:00Z", "-c", str(config)
    )
    assert code == 0
    assert report["tzpath"] == []
    # Berlin springs forward on 2026-03-29: 02:30 does not exist, that night runs at 03:00.
    assert out.splitlines() == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]
