"""A slot fired by a real node runs on a real worker, under the task id DESIGN.md promises,
and the worker hooks report its outcome."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.result import AsyncResult

from scheduler.store.outcomes import read_outcomes

from .harness import Children, Cluster, slot_text, task_id_for, wait_until, write_config

NAMESPACE = "it-roundtrip"
QUEUE = "it-roundtrip"


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_hello_result_arrives_under_the_slot_task_id(
    redis_server: Any, children: Children, tmp_path: Path
) -> None:
    url = redis_server.url
    config = write_config(
        tmp_path / "scheduler.toml",
        redis_url=url,
        namespace=NAMESPACE,
        jobs={
            "greet": {
                "task": "jobs.examples.hello",
                "every": "1s",
                "args": ["integration"],
                "queue": QUEUE,
            },
            "broken": {
                "task": "jobs.examples.count_errors",
                "every": "1s",
                "kwargs": {"path": str(tmp_path / "no-such.log")},
                "queue": QUEUE,
            },
        },
    )
    cluster = Cluster(children, config)
    worker = cluster.start_worker(QUEUE)
    cluster.start_node("n1")
    cluster.wait_worker_ready(worker)
    cluster.wait_for_leader()

    # A slot safely after leadership began: a new job never fires slots from before that.
    slot = slot_text(int(time.time()) + 2)
    task_id = task_id_for(NAMESPACE, "greet", slot)
    client_app = Celery("it-client", broker=url, backend=url)
    try:
        result = AsyncResult(task_id, app=client_app).get(timeout=30)
    finally:
        client_app.close()
    assert result == "Hello, integration!"

    # The worker hook read the scheduler headers off the request and reported the outcome.
    state = redis_server.client()

    def outcome_of(job: str, outcome: str) -> dict[str, Any] | None:
        record = read_outcomes(state, NAMESPACE).get(job)
        return record if record and record.get("outcome") == outcome else None

    record = wait_until(
        lambda: outcome_of("greet", "succeeded"), timeout_s=15, what="greet's success recorded"
    )
    assert record["task_id"] == task_id_for(NAMESPACE, "greet", record["slot"])
    failure = wait_until(
        lambda: outcome_of("broken", "failed"), timeout_s=15, what="broken's failure recorded"
    )
    assert failure["detail"].startswith("FileNotFoundError: count_errors: no log file at")
