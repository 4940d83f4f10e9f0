"""The wheel as users get it: built from the tree, installed in a clean venv, run from outside.

The tree is copied first (the files git tracks or would track, as a fresh clone has them), so
a stale build/ in the work tree cannot leak into the wheel. The venv has no pip of its own and
no site-packages but its own: this venv's pip installs into it (`pip --python`), taking the
dependencies from the package index as a user's `pip install` would. The index is reachable
on every machine of this project and in CI; without it the test skips locally and fails in CI.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from scheduler import __version__
from scheduler.config import load_config
from tests.conftest import missing_server

ROOT = Path(__file__).resolve().parents[2]
DIST = "celery-ha-scheduler"
DIST_DIR = f"celery_ha_scheduler-{__version__}.dist-info"
PIP_TIMEOUT_S = 300


def source_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout.decode()
    return sorted(name for name in listed.split("\0") if name and (ROOT / name).is_file())


def pip(*args: str, timeout: float = PIP_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def index_reachable(scratch: Path) -> bool:
    """Whether pip can fetch from the package index at all (a small, certain download)."""
    probe = pip("download", "--no-deps", "--no-cache-dir", "-d", str(scratch), "typer", timeout=60)
    return probe.returncode == 0


def needs_index(done: subprocess.CompletedProcess[str], what: str, scratch: Path) -> None:
    if done.returncode == 0:
        return
    if not index_reachable(scratch):
        missing_server(f"the package index, needed for {what},")
    tail = "\n".join(done.stderr.splitlines()[-15:])
    pytest.fail(f"{what} failed:\n{tail}")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    tree = base / "src"
    for name in source_files():
        target = tree / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((ROOT / name).read_bytes())
    built = pip("wheel", "--no-deps", "-q", "-w", str(base / "dist"), str(tree))
    needs_index(built, "building the wheel (setuptools in its build environment)", base)
    (found,) = (base / "dist").glob("*.whl")
    return found


def test_the_wheel_holds_the_package_data_and_nothing_else(wheel: Path) -> None:
    assert wheel.name == f"celery_ha_scheduler-{__version__}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    lua = {name for name in source_files() if name.endswith(".lua")}
    assert lua, "the tree has Lua scripts"
    assert lua <= names, f"missing Lua scripts: {sorted(lua - names)}"
    modules = {
        name
        for name in source_files()
        if name.endswith(".py") and name.split("/")[0] in ("scheduler", "jobs")
    }
    assert modules <= names, f"missing modules: {sorted(modules - names)}"
    assert {"scheduler/py.typed", "jobs/py.typed", f"{DIST_DIR}/licenses/LICENSE"} <= names
    tops = {name.split("/")[0] for name in names}
    assert tops == {"scheduler", "jobs", DIST_DIR}  # no tests/, bench/, tools/, config/
    assert (ROOT / "LICENSE").read_bytes() == zipfile.ZipFile(wheel).read(
        f"{DIST_DIR}/licenses/LICENSE"
    )


def test_the_wheel_metadata_names_the_free_distribution(wheel: Path) -> None:
    text = zipfile.ZipFile(wheel).read(f"{DIST_DIR}/METADATA").decode()
    metadata = Parser().parsestr(text)
    assert metadata["Name"] == DIST
    assert metadata["Version"] == __version__
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert metadata["Requires-Python"] == ">=3.11"
    classifiers = metadata.get_all("Classifier")
    assert "Typing :: Typed" in classifiers
    assert "Framework :: Celery" in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]
    entry_points = zipfile.ZipFile(wheel).read(f"{DIST_DIR}/entry_points.txt").decode()
    assert "scheduler = scheduler.cli:main" in entry_points


def test_an_install_of_the_wheel_runs_from_outside_the_tree(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60
    )
    python = venv / "bin" / "python"
    installed = pip("--python", str(python), "install", "-q", str(wheel))
    needs_index(installed, "installing the wheel's dependencies", tmp_path)

    config = tmp_path / "scheduler.toml"
    config.write_bytes((ROOT / "config" / "scheduler.toml").read_bytes())
    expected = load_config(config, env={})
    clean_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        # From tmp_path, with no PYTHONPATH: only the venv's site-packages has `scheduler`.
        return subprocess.run(
            [str(venv / "bin" / args[0]), *args[1:]],
            cwd=tmp_path,
            env=clean_env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    validated = run("scheduler", "validate", "--config", str(config))
    assert (validated.returncode, validated.stderr) == (0, "")
    assert validated.stdout == (
        f"{config}: ok, {len(expected.jobs)} jobs, config hash {expected.hash}\n"
    )
    assert len(expected.jobs) == 8  # the example config's jobs

    version = run("scheduler", "--version")
    assert (version.returncode, version.stdout) == (0, f"scheduler {__version__}\n")

    # Imported from the venv, with its Lua scripts and its metadata, not from this tree.
    probe = run(
        "python",
        "-c",
        "import importlib.metadata as m, scheduler, jobs; "
        "from scheduler.store.scripts import script_text; "
        "print(scheduler.__file__); print(jobs.__file__); "
        f"print(m.version({DIST!r})); print(len(script_text('claim')) > 0)",
    )
    assert probe.returncode == 0, probe.stderr
    module, jobs_module, dist_version, lua_read = probe.stdout.splitlines()
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert Path(module).is_relative_to(site / "site-packages" / "scheduler")
    assert Path(jobs_module).is_relative_to(site / "site-packages" / "jobs")
    assert dist_version == __version__
    assert lua_read == "True"
