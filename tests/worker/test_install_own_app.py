"""A user's own Celery app, in a module of their own, calls `install(app)`: a real worker of
that app consumes a slot a real node fires, runs it once and reports it; and importing
`jobs.hooks` (or the user's module) builds no app of ours and reads no config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.harness import (
    REPO_ROOT,
    Cluster,
    celery_result,
    every_second,
    wait_for_outcome,
)

NAMESPACE = "wk-ownapp"
QUEUE = "wk-ownapp"

# The example of the docs, with the broker and backend of this test's private Redis.
USER_APP = """\
from celery import Celery

from jobs.hooks import install

app = Celery("myapp", broker="{url}", backend="{url}")
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
install(app)  # before the tasks: they get RunOnceTask as their base


@app.task(name="myapp.report")
def report(day: str) -> str:
    return f"report for {{day}}"
"""

# Run in a fresh interpreter: which modules and Celery apps exist after the imports.
PROBE = """\
import json, sys
import jobs.hooks
after_hooks = sorted(app.main for app in __import__("celery")._state._get_active_apps())
import myapp
from jobs.runonce import RunOnceTask
print(json.dumps({
    "after_hooks": after_hooks,
    "apps": sorted(app.main for app in __import__("celery")._state._get_active_apps()),
    "jobs_celery_imported": "jobs.celery" in sys.modules,
    "run_once": isinstance(myapp.report, RunOnceTask),
}))
"""


def write_user_app(directory: Path, redis_url: str) -> Path:
    path = directory / "myapp.py"
    path.write_text(USER_APP.format(url=redis_url), encoding="utf-8")
    return path


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_users_app_consumes_a_fire_and_reports_it(cluster: Cluster, tmp_path: Path) -> None:
    app_dir = tmp_path / "userapp"
    app_dir.mkdir()
    write_user_app(app_dir, cluster.redis_url)
    cluster.configure(
        namespace=NAMESPACE,
        jobs={"report": every_second("myapp.report", args=["monday"], queue=QUEUE)},
    )
    env = {**cluster.env, "PYTHONPATH": f"{app_dir}:{REPO_ROOT}"}
    command = [
        sys.executable, "-m", "celery", "-A", "myapp", "worker", "--pool=solo",
        "--without-mingle", "--without-gossip", "--without-heartbeat",
        "-Q", QUEUE, "-n", "own@%h", "--loglevel=INFO",
    ]  # fmt: skip
    worker = cluster.children.start("own-worker", command, env)
    cluster.start_node("n1")
    cluster.wait_worker_ready(worker)
    cluster.wait_for_leader()

    record = wait_for_outcome(cluster.state(), NAMESPACE, "report", "succeeded", timeout_s=30)
    # The hooks reported the run from the user's worker, under the slot's own task id.
    rows = {row["task_id"]: row for row in cluster.cli_json("history", "report")}
    assert rows[record["task_id"]]["outcome"] == "succeeded"
    assert rows[record["task_id"]]["worker"].startswith("own@")
    result = celery_result(
        record["task_id"], broker_url=cluster.redis_url, backend_url=cluster.redis_url
    )
    assert result == "report for monday"
    # Our own app was never built in the user's worker: the banner lists only the user's tasks.
    banner = worker.log_text()
    assert "myapp.report" in banner
    assert "jobs.examples" not in banner


def test_importing_hooks_builds_no_app(tmp_path: Path) -> None:
    write_user_app(tmp_path, "redis://127.0.0.1:1/0")  # never connected to
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{tmp_path}:{REPO_ROOT}",
        # No config: install() falls back to the defaults and connects to nothing on import.
        "SCHEDULER_CONFIG": str(tmp_path / "missing-dir" / "scheduler.toml"),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "after_hooks": [],
        "apps": ["myapp"],
        "jobs_celery_imported": False,
        "run_once": True,
    }
