"""A real Celery worker runs shell jobs from its own copy of the config: a command writes its
marker and its report holds "exit 0" and its stdout, a failing one is failed with its exit code
and stderr, a timeout kills it, retries report "retried" and keep the run-once claim, and
forged messages (a real Celery send_task with our headers) run nothing."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from jobs.job_lookup import JobLookup, Refused
from scheduler.config import load_config
from scheduler.history import WorkerEvent
from scheduler.jobspec import HTTP_TASK, SHELL_TASK
from scheduler.messages import MessageFactory
from scheduler.store.keys import Keys
from scheduler.store.reports import read_reports
from scheduler.store.runs import Execution, RunClaims
from scheduler.wire import HEADER_JOB, HEADER_JOB_HASH, HEADER_SLOT, job_hash, slot_text, task_id
from tests.integration.harness import Child, Cluster, wait_for_outcome, write_config
from tests.worker.test_worker_runonce import wait_for_log

NAMESPACE = "wk-builtin"
SLOT_S = 1_800_000_000
TOKEN = 3
PY = sys.executable
# Writes its argv[1] into the file named by $MARKER, says so on stdout.
WRITE_MARKER = "import os, sys; open(os.environ['MARKER'], 'w').write(sys.argv[1]); print('wrote', sys.argv[1])"
# Fails while the counter file holds fewer than 2 lines, adding one each time.
FLAKY = (
    "import sys; p = sys.argv[1]; n = len(open(p).readlines()) if __import__('os').path.exists(p) "
    "else 0; open(p, 'a').write('x\\n'); sys.exit(f'attempt {n + 1} failed') if n < 2 else print('ok')"
)


def start_builtin_worker(cluster: Cluster, queue: str, name: str = "worker") -> Child:
    """Our worker app (jobs/app.py includes jobs.builtin) on `queue`, ready to consume."""
    command = [
        PY, "-m", "celery", "-A", "jobs", "worker",
        "--pool=solo", "--without-mingle", "--without-gossip", "--without-heartbeat",
        "-Q", queue, "-n", f"{name}.{uuid.uuid4().hex[:8]}@%h", "--loglevel=INFO",
    ]  # fmt: skip
    worker = cluster.children.start(name, command, cluster.env)
    cluster.wait_worker_ready(worker)
    return worker


def push(cluster: Cluster, job: str, slot_s: int = SLOT_S) -> str:
    """LPUSH the fire of `job` as a leader's claim script would; its task id."""
    factory = MessageFactory(NAMESPACE, cluster.redis_url, {})
    try:
        message = factory.redis_push(load_config(cluster.config_path).jobs[job], slot_s, TOKEN)
    finally:
        factory.close()
    cluster.state().lpush(message.key, message.payload)
    return task_id(NAMESPACE, job, slot_s)


def forge(
    cluster: Cluster, queue: str, headers: Mapping[str, Any], ident: str | None = None
) -> str:
    """What anyone with write access to the broker can send: a Celery send_task."""
    client = Celery("forger", broker=cluster.redis_url)
    ident = ident or uuid.uuid4().hex
    try:
        client.send_task("jobs.builtin.shell", task_id=ident, queue=queue, headers=dict(headers))
    finally:
        client.close()
    return ident


def finished(cluster: Cluster, job: str, ident: str) -> WorkerEvent:
    """The newest succeeded/failed report of `ident`, once there is one."""

    def found() -> WorkerEvent | None:
        events = read_reports(cluster.state(), Keys(NAMESPACE), {job: None}).value.get(job, [])
        ends = [e for e in events if e.task_id == ident and e.event in ("succeeded", "failed")]
        return ends[0] if ends else None

    return cluster.wait_until(found, timeout_s=30, what=f"{job} {ident} to finish")


def shell_job(queue: str, command: list[str], **extra: object) -> dict[str, object]:
    return {"command": command, "every": "1h", "queue": queue, **extra}


@pytest.mark.integration
@pytest.mark.timeout(150)
def test_shell_jobs_run_from_the_workers_config_and_forged_messages_run_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    queue = f"wk-shell-{uuid.uuid4().hex[:8]}"
    marker, forged_marker, counter = tmp_path / "marker", tmp_path / "forged", tmp_path / "n"
    cluster.configure(
        namespace=NAMESPACE,
        jobs={
            "backup": shell_job(queue, [PY, "-c", WRITE_MARKER, "full"], env={"MARKER": str(marker)}),
            "target": shell_job(queue, [PY, "-c", WRITE_MARKER, "x"], env={"MARKER": str(forged_marker)}),
            "broken": shell_job(queue, ["sh", "-c", "echo partial; echo 'disk full' >&2; exit 3"]),
            "slow": shell_job(queue, ["sleep", "60"], timeout="1s"),
            "flaky": shell_job(queue, [PY, "-c", FLAKY, str(counter)], retries=2, retry_delay="1s"),
        },
    )  # fmt: skip
    worker = start_builtin_worker(cluster, queue)

    ident = push(cluster, "backup")
    done = finished(cluster, "backup", ident)
    assert marker.read_text() == "full"
    assert done.event == "succeeded"
    assert done.error is None
    assert done.detail is not None
    assert done.detail.startswith("exit 0 in ")
    assert done.detail.endswith("\nstdout:\nwrote full")

    ident = push(cluster, "broken")
    done = finished(cluster, "broken", ident)
    assert (done.event, done.error) == ("failed", "exit 3: disk full")
    assert done.detail is not None
    assert done.detail.startswith("exit 3 in ")
    assert done.detail.endswith("s\nstdout:\npartial\nstderr:\ndisk full")

    ident = push(cluster, "slow")
    done = finished(cluster, "slow", ident)
    assert (done.event, done.error) == ("failed", "timed out after 1s: process group sent SIGTERM")
    assert done.duration_s is not None
    assert 1 <= done.duration_s < 5

    # Forged: a job this worker does not know, and the right job with another definition's hash.
    slot = slot_text(SLOT_S)
    genuine_hash = job_hash(load_config(cluster.config_path).jobs["target"].fingerprint())
    forge(cluster, queue, {HEADER_JOB: "ghost", HEADER_SLOT: slot, HEADER_JOB_HASH: genuine_hash})
    wait_for_log(worker, f"refused jobs.builtin.shell for job ghost slot {slot}")
    # With the genuine fire's own task id, which anyone can compute: were it claimed, the
    # genuine fire would then be skipped as a repeat.
    forged = {HEADER_JOB: "target", HEADER_SLOT: slot, HEADER_JOB_HASH: "0" * 16}
    forge(cluster, queue, forged, task_id(NAMESPACE, "target", SLOT_S))
    wait_for_log(worker, f"refused jobs.builtin.shell for job target slot {slot}")
    forge(cluster, queue, {"some": "header"})  # not even ours
    wait_for_log(worker, "not sent by the scheduler")
    assert "job 'ghost' is not in the worker's config" in worker.log_text()
    assert (
        "job 'target' hash 0000000000000000 differs from the worker's config" in worker.log_text()
    )
    outcome = wait_for_outcome(cluster.state(), NAMESPACE, "target", "failed")
    assert outcome["detail"].startswith("Refused: job 'target' hash 0000000000000000 differs")
    assert not forged_marker.exists()
    # Nothing was claimed, so the genuine fire of that slot runs.
    push(cluster, "target")
    wait_for_outcome(cluster.state(), NAMESPACE, "target", "succeeded")
    assert forged_marker.read_text() == "x"

    # Retries: two failures reported as retried (1 s, then 1 s again), then success, under
    # one task id whose claim each attempt took in turn.
    ident = push(cluster, "flaky")
    done = finished(cluster, "flaky", ident)
    assert done.event == "succeeded"
    events = read_reports(cluster.state(), Keys(NAMESPACE), {"flaky": None}).value["flaky"]
    ours = [e for e in reversed(events) if e.task_id == ident and e.event != "received"]
    assert [(e.event, e.error) for e in ours] == [
        ("started", None), ("retried", "exit 1: attempt 1 failed"),
        ("started", None), ("retried", "exit 1: attempt 2 failed"),
        ("started", None), ("succeeded", None),
    ]  # fmt: skip
    assert counter.read_text() == "x\nx\nx\n"
    assert [e.retries for e in executions(cluster, ident)] == [0, 1, 2]


def executions(cluster: Cluster, ident: str) -> list[Execution]:
    claims = RunClaims(cluster.state(), Keys(NAMESPACE))
    return [e for e in claims.executions() if e.task_id == ident]


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_a_real_leader_fires_a_shell_job_that_a_real_worker_runs(
    cluster: Cluster, tmp_path: Path
) -> None:
    queue = f"wk-shell-e2e-{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "marker"
    append = "import os; open(os.environ['MARKER'], 'a').write('ran\\n'); print('ran')"
    cluster.configure(
        namespace=NAMESPACE,
        jobs={"tick": {"command": [PY, "-c", append], "env": {"MARKER": str(marker)},
                       "every": "1s", "queue": queue}},
    )  # fmt: skip
    start_builtin_worker(cluster, queue)
    cluster.start_node("n1")
    cluster.wait_for_leader()
    outcome = wait_for_outcome(cluster.state(), NAMESPACE, "tick", "succeeded", timeout_s=30)
    assert marker.read_text().startswith("ran\n")
    [row] = [
        r
        for r in cluster.cli_json("history", "tick", "-n", "20")
        if r["task_id"] == outcome["task_id"]
    ]
    assert row["outcome"] == "succeeded"
    assert row["detail"].startswith("exit 0 in ")
    assert row["detail"].endswith("s\nstdout:\nran")


def test_the_lookup_reads_an_edited_config_again_and_keeps_the_last_valid_one(
    tmp_path: Path,
) -> None:
    config = tmp_path / "scheduler.toml"
    jobs: dict[str, dict[str, object]] = {"a": {"command": ["true"], "every": "1h"}}
    write_config(config, redis_url="redis://127.0.0.1:1/0", jobs=jobs)
    lookup = JobLookup(config)
    first = lookup.builtin_job(
        "a", SHELL_TASK, job_hash(load_config(config).jobs["a"].fingerprint())
    )
    assert first.command == ("true",)
    with pytest.raises(Refused, match=r"^job .a. is not an http job in the worker.s config"):
        lookup.builtin_job("a", HTTP_TASK, "x" * 16)
    jobs["a"] = {"command": ["false", "--now"], "every": "1h"}
    write_config(config, redis_url="redis://127.0.0.1:1/0", jobs=jobs)
    new_hash = job_hash(load_config(config).jobs["a"].fingerprint())
    assert lookup.builtin_job("a", SHELL_TASK, new_hash).command == ("false", "--now")
    config.write_text(config.read_text() + "\n[jobs.b]\nevery = 'never'\n")
    # Invalid now: the copy read before stays in use, as a node keeps its jobs on a bad reload.
    assert lookup.builtin_job("a", SHELL_TASK, new_hash).command == ("false", "--now")
    with pytest.raises(Refused, match=r"^the message carries no scheduler_job_hash header$"):
        lookup.builtin_job("a", SHELL_TASK, None)
    config.unlink()
    with pytest.raises(Refused, match=f"^this worker has no config file at {config} "):
        lookup.builtin_job("a", SHELL_TASK, new_hash)
