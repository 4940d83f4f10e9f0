"""The systemd units say what the design relies on, and systemd itself accepts them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import missing_server

UNIT_DIR = Path(__file__).resolve().parents[2] / "systemd"
INSTALL_PREFIX = "/opt/scheduler/bin/"

Unit = dict[str, dict[str, list[str]]]


def parse_unit(path: Path) -> Unit:
    """Sections to keys to every value given (systemd keys like Environment= may repeat)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        key, equals, value = line.partition("=")
        where = f"{path.name}:{number}"
        assert equals, f"{where}: not a setting: {raw!r}"
        assert section is not None, f"{where}: setting outside a [section]"
        assert not raw.rstrip().endswith("\\"), f"{where}: keep settings on one line"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


@pytest.fixture(scope="module")
def node() -> dict[str, list[str]]:
    return parse_unit(UNIT_DIR / "scheduler.service")["Service"]


@pytest.fixture(scope="module")
def worker() -> dict[str, list[str]]:
    return parse_unit(UNIT_DIR / "celery-worker.service")["Service"]


def test_node_is_a_notify_service_with_a_watchdog(node: dict[str, list[str]]) -> None:
    assert node["Type"] == ["notify"]
    assert node["WatchdogSec"], "the node sends WATCHDOG=1; without WatchdogSec it is ignored"


def test_node_stops_with_sigterm_so_the_lease_is_handed_over(node: dict[str, list[str]]) -> None:
    assert node["KillSignal"] == ["SIGTERM"]
    assert node["TimeoutStopSec"]
    assert node["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


def test_both_restart_on_failure_and_read_the_shared_config(
    node: dict[str, list[str]], worker: dict[str, list[str]]
) -> None:
    for service in (node, worker):
        assert service["Restart"] == ["on-failure"]
        assert service["RestartSec"]
        assert "SCHEDULER_CONFIG=/etc/scheduler/scheduler.toml" in service["Environment"]


def test_node_does_not_restart_into_the_same_bad_config(node: dict[str, list[str]]) -> None:
    assert node["RestartPreventExitStatus"] == ["2"]  # exit code 2: invalid config


def test_redis_password_comes_from_a_credential_not_the_config(
    node: dict[str, list[str]], worker: dict[str, list[str]]
) -> None:
    for service in (node, worker):
        assert any(c.startswith("redis-password:") for c in service["LoadCredential"])
        assert "SCHEDULER_REDIS_PASSWORD_FILE=%d/redis-password" in service["Environment"]


def test_worker_runs_the_jobs_app_and_shuts_down_warm(worker: dict[str, list[str]]) -> None:
    (command,) = worker["ExecStart"]
    assert command.split()[1:4] == ["-A", "jobs", "worker"]
    assert worker["KillSignal"] == ["SIGTERM"]  # Celery's warm shutdown
    assert worker["KillMode"] == ["mixed"]


@pytest.mark.parametrize("name", ["scheduler.service", "celery-worker.service"])
def test_units_are_hardened(name: str) -> None:
    service = parse_unit(UNIT_DIR / name)["Service"]
    assert service.get("DynamicUser") == ["yes"] or service.get("User"), "never run as root"
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "PrivateDevices"):
        assert service[key] == ["yes"], key
    assert service["ProtectSystem"] == ["strict"]
    assert service["CapabilityBoundingSet"] == [""]


@pytest.mark.parametrize("name", ["scheduler.service", "celery-worker.service"])
def test_systemd_analyze_verify_accepts_the_unit(name: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        missing_server("systemd-analyze")
    # verify insists that ExecStart binaries exist: point them at stand-ins in tmp_path.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("scheduler", "celery"):
        stand_in = bin_dir / program
        stand_in.write_text("#!/bin/sh\n", encoding="utf-8")
        stand_in.chmod(0o755)
    text = (UNIT_DIR / name).read_text(encoding="utf-8")
    (tmp_path / name).write_text(text.replace(INSTALL_PREFIX, f"{bin_dir}/"), encoding="utf-8")
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(tmp_path / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = (done.stdout + done.stderr).strip()
    # verify exits 0 on unknown keys and only warns, so any output at all is a failure.
    assert done.returncode == 0, output
    assert not output
