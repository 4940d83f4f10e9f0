"""A real Celery worker makes http jobs' requests to a local http.server: method, headers and
JSON as configured, the status and the body's start in the report; a status outside `expect`
is a failure; an edited config is read again, and the old definition's messages refused."""

from __future__ import annotations

import json
import uuid

import pytest

from scheduler.config import load_config
from scheduler.messages import MessageFactory
from scheduler.wire import slot_text
from tests.integration.harness import Cluster
from tests.unit.test_http_run import (
    LocalServer,
    local,  # noqa: F401  (a fixture, re-used by name)
)
from tests.worker.test_shell_jobs import NAMESPACE, finished, push, start_builtin_worker
from tests.worker.test_worker_runonce import wait_for_log

OLD_SLOT, NEW_SLOT = 1_800_003_600, 1_800_007_200


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_http_jobs_send_the_configured_request_and_judge_the_status(
    cluster: Cluster,
    local: LocalServer,  # noqa: F811
) -> None:
    queue = f"wk-http-{uuid.uuid4().hex[:8]}"
    notify = {
        "method": "POST",
        "url": f"{local.url}/hooks/nightly",
        "headers": {"Authorization": "Bearer t0ken"},
        "json": {"report": "nightly", "items": [1, 2]},
        "timeout": "5s",
        "expect": [200, 204],
    }
    jobs = {
        "notify": {"http": notify, "every": "1h", "queue": queue},
        "check": {"http": {"url": f"{local.url}/health"}, "every": "1h", "queue": queue},
    }
    cluster.configure(namespace=NAMESPACE, jobs=jobs)
    worker = start_builtin_worker(cluster, queue)

    done = finished(cluster, "notify", push(cluster, "notify"))
    assert (done.event, done.error) == ("succeeded", None)
    assert done.detail is not None
    assert done.detail.startswith("HTTP 200 in ")
    assert done.detail.endswith('s\nbody:\n{"ok": true}')
    [seen] = local.requests
    assert (seen.method, seen.path) == ("POST", "/hooks/nightly")
    assert seen.headers["Authorization"] == "Bearer t0ken"
    assert json.loads(seen.body) == {"report": "nightly", "items": [1, 2]}

    local.status, local.body = 503, b"maintenance until 06:00"
    done = finished(cluster, "check", push(cluster, "check"))
    assert (done.event, done.error) == (
        "failed",
        f"HTTP 503 from GET {local.url}/health, expected 2xx",
    )
    assert done.detail is not None
    assert done.detail.endswith("\nbody:\nmaintenance until 06:00")

    # The config changes under the running worker: the new definition's fire runs (the file is
    # read again), a fire of the old definition is refused (its hash is no longer the worker's).
    factory = MessageFactory(NAMESPACE, cluster.redis_url, {})
    try:
        before = load_config(cluster.config_path).jobs["notify"]
        stale = factory.redis_push(before, OLD_SLOT, 3)
    finally:
        factory.close()
    local.status, local.body = 204, b""
    moved = {**notify, "url": f"{local.url}/hooks/v2"}
    jobs["notify"] = {"http": moved, "every": "1h", "queue": queue}
    cluster.configure(namespace=NAMESPACE, jobs=jobs)
    done = finished(cluster, "notify", push(cluster, "notify", slot_s=NEW_SLOT))
    assert done.event == "succeeded"
    assert done.detail is not None
    assert done.detail.startswith("HTTP 204 in ")
    assert local.requests[-1].path == "/hooks/v2"
    sent = len(local.requests)
    cluster.state().lpush(stale.key, stale.payload)
    wait_for_log(worker, f"refused jobs.builtin.http for job notify slot {slot_text(OLD_SLOT)}")
    assert len(local.requests) == sent
