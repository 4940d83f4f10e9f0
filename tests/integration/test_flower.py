"""A real Flower, from the package index in a venv of its own, watches a worker started with
``-E``: a slot a real node fired is found through Flower's HTTP API by its task id, with its
task name, state, result and worker.

Flower pins what it likes, so it never enters the project's venv: its venv lives under
``.run/`` keyed by Flower's version and is built once (about 10 s here), then reused.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, missing_server

from .harness import REPO_ROOT, Child, Cluster, every_second, slot_soon, task_id_for

FLOWER_VERSION = "2.2.0"
# The workers' Celery, so Flower reads their events as they write them.
FLOWER_REQUIREMENTS = (f"flower=={FLOWER_VERSION}", "celery[redis]==5.7.0")
RUN_DIR = REPO_ROOT / ".run"
FLOWER_VENV = RUN_DIR / f"flower-venv-{FLOWER_VERSION}"
COMPLETE = ".complete"  # written last: a venv without it is half-built and made again
INSTALL_TIMEOUT_S = 300.0
NAMESPACE = "it-flower"
QUEUE = "it-flower"


@contextlib.contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """One test process at a time builds the venv (others wait, then reuse it)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def flower_python() -> Path:
    """The interpreter of the cached Flower venv, built first if needed."""
    python = FLOWER_VENV / "bin" / "python"
    with exclusive(RUN_DIR / "flower-venv.lock"):
        if (FLOWER_VENV / COMPLETE).exists():
            return python
        shutil.rmtree(FLOWER_VENV, ignore_errors=True)
        started = time.monotonic()
        # No pip of its own: this venv's pip installs into it, which saves bootstrapping one.
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(FLOWER_VENV)],
            check=True,
            timeout=60,
        )
        done = subprocess.run(
            [
                sys.executable, "-m", "pip", "--disable-pip-version-check",
                "--python", str(python), "install", "-q", *FLOWER_REQUIREMENTS,
            ],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )  # fmt: skip
        if done.returncode != 0:
            shutil.rmtree(FLOWER_VENV, ignore_errors=True)
            print(done.stderr[-2000:])  # shown with the failure or skip
            missing_server(f"Flower {FLOWER_VERSION} from the package index")
        elapsed = time.monotonic() - started
        (FLOWER_VENV / COMPLETE).write_text(f"installed in {elapsed:.1f}s\n", encoding="utf-8")
    return python


def get_json(url: str) -> Any | None:
    """The JSON of a 200 answer; None while Flower is not listening or does not know it."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise
    except (ConnectionError, urllib.error.URLError):
        return None


def start_flower(cluster: Cluster, port: int) -> Child:
    python = flower_python()
    command = [
        str(python), "-m", "celery", "--broker", cluster.redis_url, "flower",
        "--address=127.0.0.1", f"--port={port}",
        # Flower would otherwise switch events on itself (a broadcast to every worker):
        # here only the worker's own -E makes them flow.
        "--enable_events=False",
    ]  # fmt: skip
    # Not our env: nothing of this checkout or of the project's venv on Flower's path.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cluster.config_path.parent)}
    env["FLOWER_UNAUTHENTICATED_API"] = "true"  # Flower 2 refuses its API without auth else
    return cluster.children.start("flower", command, env)


def start_worker_with_events(cluster: Cluster) -> Child:
    command = [
        sys.executable, "-m", "celery", "-A", "jobs", "worker", "-E",
        "--pool=solo", "--without-mingle", "--without-gossip", "--without-heartbeat",
        "-Q", QUEUE, "-n", "flower-worker@%h", "--loglevel=INFO",
    ]  # fmt: skip
    return cluster.children.start("worker", command, cluster.env)


@pytest.mark.integration
@pytest.mark.timeout(INSTALL_TIMEOUT_S + 120)
def test_flower_finds_a_scheduled_task_by_its_id(cluster: Cluster) -> None:
    cluster.configure(
        namespace=NAMESPACE,
        jobs={"greet": every_second("jobs.examples.hello", args=["flower"], queue=QUEUE)},
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    flower = start_flower(cluster, port)

    def listening() -> bool:
        if not flower.alive():
            raise RuntimeError(f"flower exited early:\n{flower.tail()}")
        return get_json(f"{base}/api/workers") is not None

    cluster.wait_until(listening, timeout_s=30, what="Flower's API to answer")
    worker = start_worker_with_events(cluster)
    cluster.start_node("n1")
    cluster.wait_worker_ready(worker)
    cluster.wait_for_leader()

    task_id = task_id_for(NAMESPACE, "greet", slot_soon())

    def succeeded() -> dict[str, Any] | None:
        info = get_json(f"{base}/api/task/info/{task_id}")
        return info if info is not None and info.get("state") == "SUCCESS" else None

    info = cluster.wait_until(succeeded, timeout_s=30, what=f"Flower to show {task_id} done")
    assert info["uuid"] == task_id
    assert info["name"] == "jobs.examples.hello"
    assert info["args"] == "['flower']"
    assert info["result"] == "'Hello, flower!'"
    assert info["worker"].startswith("flower-worker@")

    # The list endpoint has it too, filtered by task name.
    listed = get_json(f"{base}/api/tasks?taskname=jobs.examples.hello&limit=1000")
    assert listed is not None
    assert listed[task_id]["state"] == "SUCCESS"
