"""Where a real worker keeps task results: a SQLite file through Celery's SQLAlchemy backend,
or the state Redis with every result expiring after `result_expires`; `jobs show` reads the
outcome from the history whichever it is."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import Cluster, every_second, wait_for_outcome, wait_until

NAMESPACE = "it-results"
QUEUE = "it-results"
RESULT_KEY = "celery-task-meta-{}"  # Celery's Redis backend, one key per task id
TEN_MINUTES_MS = 600_000


def stored_result(database: Path, task_id: str) -> tuple[str, Any] | None:
    """(status, decoded result) of the task's row in Celery's table, None if it has none."""
    if not database.exists():
        return None
    with sqlite3.connect(database) as connection:
        try:
            row = connection.execute(
                "SELECT status, result FROM celery_taskmeta WHERE task_id = ?", (task_id,)
            ).fetchone()
        except sqlite3.OperationalError:  # the worker has not created the table yet
            return None
    # The worker encodes results with result_serializer (JSON): never unpickled here.
    return None if row is None else (row[0], json.loads(row[1]))


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_sqlite_backend_stores_the_result_and_jobs_show_reads_history(
    cluster: Cluster, tmp_path: Path
) -> None:
    database = tmp_path / "results.db"
    cluster.configure(
        namespace=NAMESPACE,
        extra_settings={"result_backend": f"db+sqlite:///{database}"},
        jobs={
            "greet": every_second("jobs.examples.hello", args=["sqlite"], queue=QUEUE),
            # What celery beat ran on its own: the database backend deletes expired results
            # only when this task runs.
            "results-cleanup": {
                "task": "celery.backend_cleanup",
                "cron": "0 4 * * *",
                "queue": QUEUE,
            },
        },
    )
    cluster.bring_up("n1", worker_queue=QUEUE)
    state = cluster.state()
    record = wait_for_outcome(state, NAMESPACE, "greet", "succeeded", timeout_s=30)
    task_id = record["task_id"]

    found = cluster.wait_until(
        lambda: stored_result(database, task_id), timeout_s=10, what=f"{task_id} in {database}"
    )
    assert found == ("SUCCESS", "Hello, sqlite!")
    # Nothing of it in the state Redis: the worker's results all go to the database.
    assert state.exists(RESULT_KEY.format(task_id)) == 0

    shown = cluster.cli_json("jobs", "show", "greet")
    by_id = {fire["task_id"]: fire for fire in shown["fires"]}
    assert by_id[task_id]["outcome"] == "succeeded"

    # A result older than result_expires (a day by default) goes when the cleanup job runs.
    expired = (datetime.now(UTC) - timedelta(days=2)).replace(tzinfo=None)
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO celery_taskmeta (task_id, status, result, date_done) VALUES (?, ?, ?, ?)",
            ("expired-task", "SUCCESS", b'"old"', expired.isoformat(sep=" ")),
        )
    triggered = cluster.cli("trigger", "results-cleanup")
    assert triggered.returncode == 0, triggered.stderr
    wait_for_outcome(state, NAMESPACE, "results-cleanup", "succeeded", timeout_s=30)
    assert stored_result(database, "expired-task") is None
    assert stored_result(database, task_id) == ("SUCCESS", "Hello, sqlite!")


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_redis_results_expire_after_result_expires(cluster: Cluster) -> None:
    cluster.configure(
        namespace=NAMESPACE,
        extra_settings={"result_expires": "10m"},
        jobs={"greet": every_second("jobs.examples.hello", args=["redis"], queue=QUEUE)},
    )
    cluster.bring_up("n1", worker_queue=QUEUE)
    state = cluster.state()
    record = wait_for_outcome(state, NAMESPACE, "greet", "succeeded", timeout_s=30)
    key = RESULT_KEY.format(record["task_id"])
    stored = wait_until(lambda: state.get(key), timeout_s=10, what=f"{key} in Redis")
    assert json.loads(stored)["result"] == "Hello, redis!"
    ttl_ms = state.pttl(key)
    # Set with the result, a moment ago: 10 minutes less the time since (well under 30 s).
    assert TEN_MINUTES_MS - 30_000 < ttl_ms <= TEN_MINUTES_MS, ttl_ms

    shown = cluster.cli_json("jobs", "show", "greet")
    assert {fire["task_id"]: fire["outcome"] for fire in shown["fires"]}[
        record["task_id"]
    ] == "succeeded"
