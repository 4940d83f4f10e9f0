"""The systemd units say what the design relies on, and systemd itself accepts them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import missing_server

from .harness import Cluster, every_second, wait_for_outcome

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


def test_reload_validates_before_it_signals(node: dict[str, list[str]]) -> None:
    # A failing ExecReload= fails `systemctl reload` and stops the ones after it: an invalid
    # config is reported to the operator and never reaches the node.
    assert node["ExecReload"] == [
        f"{INSTALL_PREFIX}scheduler validate",
        "/bin/kill -HUP $MAINPID",
    ]
    # validate reads the config the node runs: the unit's SCHEDULER_CONFIG, no --config.
    assert node["ExecStart"] == [f"{INSTALL_PREFIX}scheduler run"]


def test_the_reload_check_fails_on_an_invalid_config_and_passes_a_good_one(
    node: dict[str, list[str]], tmp_path: Path
) -> None:
    """The first ExecReload= line as systemd runs it: the unit's environment (its config
    path moved into tmp_path), this checkout's `scheduler` in place of /opt/scheduler/bin."""
    command = node["ExecReload"][0].replace(INSTALL_PREFIX, f"{Path(sys.executable).parent}/")
    config = tmp_path / "scheduler.toml"
    unit_env = dict(item.split("=", 1) for item in node["Environment"])
    assert unit_env["SCHEDULER_CONFIG"] == "/etc/scheduler/scheduler.toml"
    env = {"PATH": "/usr/bin:/bin", "SCHEDULER_CONFIG": str(config)}

    def reload_check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command.split(), env=env, capture_output=True, text=True, timeout=60, check=False
        )

    config.write_text('[scheduler]\nredis_url = "redis://127.0.0.1:1/0"\n\n[jobs.a]\n'
                      'task = "t"\nevery = "often"\n', encoding="utf-8")  # fmt: skip
    bad = reload_check()
    assert bad.returncode == 2, bad.stdout + bad.stderr  # systemd: the reload job fails
    assert bad.stderr.startswith("scheduler.toml: jobs.a.every: invalid duration 'often'")
    config.write_text(config.read_text(encoding="utf-8").replace("often", "1m"), encoding="utf-8")
    good = reload_check()
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.startswith(f"{config}: ok, 1 jobs, config hash ")


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


def systemd_analyze() -> str:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        missing_server("systemd-analyze")  # fails in CI, skips locally
    return analyze


@pytest.mark.parametrize("name", ["scheduler.service", "celery-worker.service"])
def test_systemd_analyze_verify_accepts_the_unit(name: str, tmp_path: Path) -> None:
    analyze = systemd_analyze()
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


# What the units are allowed to score at most ("Overall exposure level", 0 = locked down,
# 10 = unprotected). The worker keeps what prefork and arbitrary tasks need (a supplementary
# group, @privileged/@resources system calls, the host's users), so it scores a little higher.
EXPOSURE_MAX = {"scheduler.service": 2.0, "celery-worker.service": 2.0}
_EXPOSURE = re.compile(r"Overall exposure level for (\S+): (\d+\.\d+) ")


def exposure(name: str) -> float:
    """`systemd-analyze security --offline=yes` on the unit as shipped: its overall score."""
    done = subprocess.run(
        [systemd_analyze(), "security", "--offline=yes", "--no-pager", str(UNIT_DIR / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = _EXPOSURE.findall(done.stdout + done.stderr)
    assert len(found) == 1, done.stdout + done.stderr
    (unit, score) = found[0]
    assert unit == name
    return float(score)


@pytest.mark.parametrize("name", sorted(EXPOSURE_MAX))
def test_unit_exposure_stays_low(name: str) -> None:
    score = exposure(name)
    assert score <= EXPOSURE_MAX[name], f"{name}: exposure {score} > {EXPOSURE_MAX[name]}"


def test_node_is_locked_down_further_than_the_worker() -> None:
    # The node runs no user code: whatever the worker needs, the node must not get back.
    assert exposure("scheduler.service") < exposure("celery-worker.service")


@pytest.mark.parametrize("name", ["scheduler.service", "celery-worker.service"])
def test_every_hardening_line_says_why(name: str) -> None:
    lines = (UNIT_DIR / name).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# --- Hardening"))
    for number, line in enumerate(lines[start + 1 :], start=start + 2):
        if line.startswith("["):
            break  # the hardening block ends with its section
        if not line or line.startswith("#"):
            continue
        before = lines[number - 2]
        # A setting follows its comment, or another setting of the same commented group.
        assert before.startswith("#") or "=" in before, f"{name}:{number}: {line} has no comment"


# --- MemoryDenyWriteExecute= with real processes -----------------------------------------
# systemd enforces it with a seccomp filter; the kernel's PR_SET_MDWE (Linux 6.3+) is the
# same rule (no mapping both writable and executable, none made executable later), kept
# across fork and exec. Running the real programs under it shows CPython and the C
# extensions we load do not need such memory.
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
_UNDER_MDWE = f"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_MDWE): " + os.strerror(ctypes.get_errno()))
os.execv(sys.argv[1], sys.argv[1:])
"""


def under_mdwe(command: list[str]) -> list[str]:
    return [sys.executable, "-c", _UNDER_MDWE, *command]


def mdwe_supported() -> bool:
    probe = subprocess.run(
        under_mdwe([sys.executable, "-c", "import mmap; mmap.mmap(-1, 4096, prot=7)"]),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if "prctl(PR_SET_MDWE)" in probe.stderr:
        return False
    # The probe maps read-write-exec memory: under MDWE that must be refused.
    assert probe.returncode != 0, probe.stderr
    assert "PermissionError" in probe.stderr, probe.stderr
    return True


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_node_and_prefork_worker_run_without_writable_executable_memory(
    cluster: Cluster,
) -> None:
    if not mdwe_supported():
        # The unit's MemoryDenyWriteExecute= rests on this test: CI must not skip it.
        missing_server("the kernel's PR_SET_MDWE (Linux 6.3+)")
    namespace = queue = "it-mdwe"
    cluster.configure(
        namespace=namespace,
        jobs={"greet": every_second("jobs.examples.hello", args=["mdwe"], queue=queue)},
    )
    env = cluster.env
    worker = cluster.children.start(
        "worker",
        under_mdwe(
            [
                sys.executable, "-m", "celery", "-A", "jobs", "worker",
                # prefork, as the unit runs it: the pool forks a child that runs the task.
                "--pool=prefork", "--concurrency=1", "--without-mingle", "--without-gossip",
                "-Q", queue, "-n", f"mdwe.{uuid.uuid4().hex[:8]}@%h", "--loglevel=INFO",
            ]
        ),
        env,
    )  # fmt: skip
    cluster.nodes["n1"] = cluster.children.start(
        "node-n1",
        under_mdwe(
            [sys.executable, "-m", "scheduler", "run", "--config", str(cluster.config_path),
             "--node-id", "n1"]
        ),
        env,
    )  # fmt: skip
    cluster.wait_worker_ready(worker)
    cluster.wait_for_leader()
    record = wait_for_outcome(cluster.state(), namespace, "greet", "succeeded")
    assert record["outcome"] == "succeeded"
    assert worker.alive(), worker.tail()
    assert cluster.nodes["n1"].alive(), cluster.nodes["n1"].tail()
