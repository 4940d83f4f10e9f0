"""A real Celery worker with a message key: forged and unsigned scheduler messages are
refused before they are claimed, so the genuine fire of the same task id still runs, once."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import pytest

from scheduler.config import load_config
from scheduler.messages import MessageFactory
from scheduler.wire import slot_text, task_id
from tests.integration.harness import Cluster, celery_result, wait_for_outcome
from tests.worker.test_worker_runonce import (
    NAMESPACE,
    SLOT_S,
    TOKEN,
    executions_of,
    job_table,
    start_worker,
    wait_for_log,
)

KEY = b"0123456789abcdef0123456789abcdef-the-shared-key"


def push(cluster: Cluster, key: bytes | None, *args: object) -> bytes:
    """The fire of `greet` at SLOT_S, signed with `key` (None: unsigned), with `args` instead
    of the job's own if given; LPUSHed as the claim script would."""
    factory = MessageFactory(NAMESPACE, cluster.redis_url, {}, message_key=key)
    try:
        job = load_config(cluster.config_path).jobs["greet"]
        if args:
            job = dataclasses.replace(job, args=args)
        message = factory.redis_push(job, SLOT_S, TOKEN)
    finally:
        factory.close()
    cluster.state().lpush(message.key, message.payload)
    return message.payload


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_forged_and_unsigned_messages_are_refused_and_the_genuine_fire_runs_once(
    cluster: Cluster, tmp_path: Path
) -> None:
    key_file = tmp_path / "message.key"
    key_file.write_bytes(KEY + b"\n")
    queue = f"wk-signed-{uuid.uuid4().hex[:8]}"
    cluster.configure(
        namespace=NAMESPACE,
        jobs={"greet": job_table("jobs.examples.hello", queue, "genuine")},
        extra_settings={"message_key_file": str(key_file)},
    )
    worker = start_worker(cluster, queue, "worker")
    ident = task_id(NAMESPACE, "greet", SLOT_S)
    slot = slot_text(SLOT_S)

    push(cluster, b"not the key, but just as long as one", "forged")
    wait_for_log(worker, f"refused a message for greet {slot} (task {ident}")
    push(cluster, None)  # the genuine arguments, unsigned
    wait_for_log(worker, "unsigned; dropped, not run and not claimed")
    assert worker.log_text().count("wrong signature; dropped, not run and not claimed") == 1
    assert executions_of(cluster, ident) == []  # nothing claimed the task id

    push(cluster, KEY)
    result = celery_result(ident, broker_url=cluster.redis_url, backend_url=cluster.redis_url)
    assert result == "Hello, genuine!"
    [execution] = executions_of(cluster, ident)
    assert (execution.job, execution.slot) == ("greet", slot)
    # Celery stores the result before it logs the success: wait for the line, then count it.
    wait_for_log(worker, f"Task jobs.examples.hello[{ident}] succeeded")
    assert worker.log_text().count(f"Task jobs.examples.hello[{ident}] succeeded") == 1
    assert "Hello, forged" not in worker.log_text()
    outcome = wait_for_outcome(cluster.state(), NAMESPACE, "greet", "succeeded")
    assert outcome["task_id"] == ident
