"""A slot fired by a real node runs on a real worker, under the task id docs/guarantees.md promises,
and the worker hooks report its outcome."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import (
    Cluster,
    celery_result,
    every_second,
    slot_soon,
    task_id_for,
    wait_for_outcome,
)

NAMESPACE = "it-roundtrip"
QUEUE = "it-roundtrip"


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_hello_result_arrives_under_the_slot_task_id(cluster: Cluster, tmp_path: Path) -> None:
    missing_log = str(tmp_path / "no-such.log")
    cluster.configure(
        namespace=NAMESPACE,
        jobs={
            "greet": every_second("jobs.examples.hello", args=["integration"], queue=QUEUE),
            "broken": every_second(
                "jobs.examples.count_errors", kwargs={"path": missing_log}, queue=QUEUE
            ),
        },
    )
    cluster.bring_up("n1", worker_queue=QUEUE)

    task_id = task_id_for(NAMESPACE, "greet", slot_soon())
    result = celery_result(task_id, broker_url=cluster.redis_url, backend_url=cluster.redis_url)
    assert result == "Hello, integration!"

    # The worker hook read the scheduler headers off the request and reported the outcome.
    state = cluster.state()
    record = wait_for_outcome(state, NAMESPACE, "greet", "succeeded")
    assert record["task_id"] == task_id_for(NAMESPACE, "greet", record["slot"])
    failure = wait_for_outcome(state, NAMESPACE, "broken", "failed")
    assert failure["detail"].startswith("FileNotFoundError: count_errors: no log file at")
