"""Operator fires run on a real Celery worker: a trigger under its manual task id, a backfill
under each slot's own id, and a backfill repeated sends nothing (the runs are recorded)."""

from __future__ import annotations

import json
import re

import pytest
import typer
from typer.testing import CliRunner

from scheduler.cli import control
from scheduler.wire import manual_task_id, task_id

from .harness import Cluster, celery_result, wait_for_outcome

NAMESPACE = "it-manual"
QUEUE = "it-manual"

app = typer.Typer()
app.command("trigger")(control.trigger)
app.command("backfill")(control.backfill)


def cli(cluster: Cluster, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--config", str(cluster.config_path)])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_triggered_and_backfilled_fires_run_under_their_ids(cluster: Cluster) -> None:
    cluster.configure(
        namespace=NAMESPACE,
        jobs={
            # Yearly: the schedule itself never fires during the test (and no node runs).
            "greet": {"task": "jobs.examples.hello", "args": ["manual"], "cron": "0 0 1 1 *",
                      "queue": QUEUE},
            "hourly": {"task": "jobs.examples.hello", "args": ["backfill"], "every": "1h",
                       "start": "2026-01-01T00:00:00Z", "queue": QUEUE},
        },
    )  # fmt: skip
    worker = cluster.start_worker(QUEUE)
    cluster.wait_worker_ready(worker)
    state = cluster.state()

    out = cli(cluster, "trigger", "greet", "--slot", "2026-03-01T12:00:00Z")
    found = re.fullmatch(r"triggered job greet: task (\S+) \(slot 2026-03-01T12:00:00Z\)\n", out)
    assert found is not None, out
    ident = found.group(1)
    assert ident == manual_task_id(NAMESPACE, "greet", "2026-03-01T12:00:00Z", 1)
    assert ident != task_id(NAMESPACE, "greet", 1_772_366_400)
    result = celery_result(ident, broker_url=cluster.redis_url, backend_url=cluster.redis_url)
    assert result == "Hello, manual!"
    record = wait_for_outcome(state, NAMESPACE, "greet", "succeeded")
    assert (record["task_id"], record["slot"]) == (ident, "2026-03-01T12:00:00Z")

    window = ["--from", "2026-01-01T00:00:00Z", "--to", "2026-01-01T01:00:00Z"]
    plan = json.loads(cli(cluster, "backfill", "hourly", *window, "--json"))
    ids = [task_id(NAMESPACE, "hourly", s) for s in (1_767_225_600, 1_767_229_200)]
    assert [(row["task_id"], row["action"]) for row in plan["slots"]] == [
        (ids[0], "send"), (ids[1], "send"),
    ]  # fmt: skip
    for each in ids:
        result = celery_result(each, broker_url=cluster.redis_url, backend_url=cluster.redis_url)
        assert result == "Hello, backfill!"
    # Fired and run: a second backfill of the same range sends nothing.
    again = cli(cluster, "backfill", "hourly", *window)
    assert again.startswith("backfilled job hourly: sent 0, skipped 2 already fired"), again
