"""A real worker runs chain and group fires: every step is reported, and `jobs show` gives the
outcome of the whole and of each step.

The worker sends a chain's later steps itself; the hooks stamp them as the fire's steps.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from celery.app.task import Context

from jobs.hooks import stamp_step
from scheduler.config import load_config
from scheduler.messages import MessageFactory
from scheduler.signing import Signer, canonical_body
from scheduler.wire import HEADER_SIGNATURE
from tests.integration.harness import Child, Cluster

NS = "wk-steps"
FINISHED = ("succeeded", "failed")
KEY = b"0123456789abcdef0123456789abcdef-the-steps-key"


def worker(cluster: Cluster, queue: str) -> Child:
    command = [
        sys.executable, "-m", "celery", "-A", "tests.integration.slow_tasks", "worker",
        "--pool=solo", "--without-mingle", "--without-gossip", "--without-heartbeat",
        "-Q", queue, "-n", f"steps.{uuid.uuid4().hex[:8]}@%h", "--loglevel=INFO",
    ]  # fmt: skip
    return cluster.children.start("steps-worker", command, cluster.env)


def fired(cluster: Cluster, job: str) -> str:
    """`scheduler trigger JOB`; the fire's task id."""
    done = cluster.cli("trigger", job)
    assert done.returncode == 0, done.stderr
    found = re.search(r"task (\S+) \(slot", done.stdout)
    assert found is not None, done.stdout
    return found.group(1)


def finished_fire(cluster: Cluster, job: str, ident: str) -> dict[str, Any]:
    """The fire `ident` of `job` in `jobs show --json`, once its whole has finished."""

    def done() -> dict[str, Any] | None:
        shown = cluster.cli_json("jobs", "show", job)
        row = next((r for r in shown["fires"] if r["task_id"] == ident), None)
        return row if row is not None and row["outcome"] in FINISHED else None

    return cluster.wait_until(done, timeout_s=20, what=f"the fire of {job} finished")


def outcomes(row: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [(step["step"], step["task"], step["outcome"]) for step in row["steps"]]


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_chain_and_group_fires_show_the_whole_and_each_step(
    cluster: Cluster, tmp_path: Path
) -> None:
    queue = f"wk-steps-{uuid.uuid4().hex[:8]}"
    add, mul = "jobs.examples.add", "jobs.examples.mul"
    never = "0 0 1 1 *"
    cluster.configure(
        namespace=NS,
        jobs={
            "chained": {"cron": never, "queue": queue,
                        "chain": [{"task": add, "args": [4, 4]}, {"task": mul, "args": [8]}]},
            # mul(8, {...}): 8 * a table, a TypeError in the second step's body.
            "broken": {"cron": never, "queue": queue,
                       "chain": [{"task": add, "args": [4, 4]},
                                 {"task": mul, "args": [{"not": "a number"}]}]},
            "fan": {"cron": never, "queue": queue,
                    "group": [{"task": add, "args": [n, n]} for n in (1, 2, 3)]},
        },
    )  # fmt: skip
    steps = worker(cluster, queue)
    cluster.wait_worker_ready(steps)

    ident = fired(cluster, "chained")
    row = finished_fire(cluster, "chained", ident)
    assert row["outcome"] == "succeeded", row
    assert outcomes(row) == [(0, add, "succeeded"), (1, mul, "succeeded")]
    assert row["steps"][0]["task_id"] == ident
    assert row["steps"][1]["task_id"] not in (None, ident)
    assert all(step["worker"] and step["error"] is None for step in row["steps"])
    assert all(step["duration_s"] is not None for step in row["steps"])
    # The later step is not listed again as a run of its own.
    shown = cluster.cli_json("jobs", "show", "chained")
    assert [r["task_id"] for r in shown["fires"]] == [ident]

    ident = fired(cluster, "broken")
    row = finished_fire(cluster, "broken", ident)
    assert row["outcome"] == "failed", row
    broken_steps = [(0, add, "succeeded"), (1, mul, "failed")]
    assert outcomes(row) == broken_steps
    ident_broken = ident
    error = row["steps"][1]["error"]
    assert error == "TypeError: unsupported operand type(s) for *: 'int' and 'dict'", error
    assert row["error"] == f"step 1: {error}"

    ident = fired(cluster, "fan")
    row = finished_fire(cluster, "fan", ident)
    assert row["outcome"] == "succeeded", row
    assert outcomes(row) == [(0, add, "succeeded"), (1, add, "succeeded"), (2, add, "succeeded")]
    assert len({step["task_id"] for step in row["steps"]}) == 3

    text = cluster.cli("jobs", "show", "broken")
    assert text.returncode == 0, text.stderr
    assert f"steps of {row['slot']}" not in text.stdout  # another job's fire
    lines = text.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("steps of "))
    assert lines[head].endswith("(manual, failed):"), lines[head]
    assert lines[head + 1].startswith(f"  0  {add}  succeeded  "), lines[head + 1]
    assert lines[head + 2].startswith(f"  1  {mul}  failed  "), lines[head + 2]
    assert lines[head + 2].endswith(error), lines[head + 2]
    # `history`: the same whole and steps, in its JSON and under the fire's table row.
    [whole] = [r for r in cluster.cli_json("history", "broken") if r["task_id"] == ident_broken]
    assert (whole["outcome"], outcomes(whole)) == ("failed", broken_steps)
    listed = cluster.cli("history", "broken")
    assert listed.returncode == 0, listed.stderr
    table = listed.stdout.splitlines()
    assert [line.split()[:4] for line in table[1:4]] == [
        [whole["slot"], "broken", "manual", "failed"],
        ["0", add, "step", "succeeded"],
        ["1", mul, "step", "failed"],
    ]
    # Kept for the docs (pytest keeps its newest temporary directories).
    (tmp_path / "show.txt").write_text(text.stdout)
    (tmp_path / "history.txt").write_text(listed.stdout)
    (tmp_path / "fan.json").write_text(json.dumps(row, indent=2))


def test_a_chains_next_step_is_stamped_and_signed_as_the_worker_checks_it() -> None:
    """stamp_step on a real Celery request context; the signature is checked the way
    RunOnceTask._verify checks a delivery (its embedded signatures read back from JSON)."""
    signer = Signer(KEY)
    nxt = {"task": "jobs.examples.mul", "args": [8], "kwargs": {}, "options": {}}
    parent = Context(
        id="fire-id", chain=[nxt], scheduler_job="chained", scheduler_slot="2027-01-01T00:00:00Z",
        scheduler_token="0", scheduler_kind="manual",
    )  # fmt: skip
    body = ([8, 8], {}, {"callbacks": None, "errbacks": None, "chain": [], "chord": None})
    headers: dict[str, Any] = {"id": "step-id", "parent_id": "fire-id", "root_id": "fire-id"}
    assert stamp_step(parent, "jobs.examples.mul", body, headers, signer)
    signature = headers.pop(HEADER_SIGNATURE)
    assert headers == {
        "id": "step-id", "parent_id": "fire-id", "root_id": "fire-id",
        "scheduler_job": "chained", "scheduler_slot": "2027-01-01T00:00:00Z",
        "scheduler_token": "0", "scheduler_kind": "manual",
        "scheduler_step": "1", "scheduler_fire": "fire-id",
    }  # fmt: skip
    args, kwargs, embed = json.loads(json.dumps(body))
    checked = canonical_body(args, kwargs, embed)
    step = ("jobs.examples.mul", checked, "chained", "2027-01-01T00:00:00Z", "step-id")
    assert signer.verify(signature, *step) is None
    assert signer.verify(signature, "jobs.examples.add", *step[1:]) == "wrong signature"
    # The step after it: step 2 of the same fire.
    later = Context(chain=[nxt], **headers)  # the step as its worker sees it: id "step-id"
    headers2: dict[str, Any] = {"id": "step-2", "parent_id": "step-id"}
    assert stamp_step(later, "jobs.examples.mul", body, headers2, None)
    assert (headers2["scheduler_step"], headers2["scheduler_fire"]) == ("2", "fire-id")
    assert HEADER_SIGNATURE not in headers2


def test_what_a_task_sends_besides_its_chain_is_left_alone() -> None:
    nxt = {"task": "jobs.examples.mul"}
    fired_ = {"scheduler_job": "j", "scheduler_slot": "2027-01-01T00:00:00Z"}
    for parent, task, parent_id in [
        (Context(id="f", chain=[nxt], **fired_), "jobs.examples.hello", "f"),  # another task
        (Context(id="f", chain=[nxt], **fired_), "jobs.examples.mul", "other"),  # not its child
        (Context(id="f", chain=[], **fired_), "jobs.examples.mul", "f"),  # no chain
        (Context(id="f", chain=[nxt]), "jobs.examples.mul", "f"),  # not the scheduler's
    ]:
        headers: dict[str, Any] = {"id": "x", "parent_id": parent_id}
        assert not stamp_step(parent, task, ([], {}, {}), headers, None)
        assert headers == {"id": "x", "parent_id": parent_id}


def signed_chain_fire(cluster: Cluster, job: str, slot_s: int) -> tuple[str, bytes, str]:
    """The fire of chain `job` at `slot_s` as the scheduler builds and signs it (over its
    arguments and its embedded chain, what the worker verifies): (queue key, payload, id)."""
    factory = MessageFactory(NS, cluster.redis_url, {}, message_key=KEY)
    try:
        push = factory.redis_push(load_config(cluster.config_path).jobs[job], slot_s, 7)
    finally:
        factory.close()
    return push.key, push.payload, str(json.loads(push.payload)["headers"]["id"])


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_with_a_message_key_the_worker_signs_the_chains_next_step(
    cluster: Cluster, tmp_path: Path
) -> None:
    key_file = tmp_path / "message.key"
    key_file.write_bytes(KEY + b"\n")
    queue = f"wk-signed-steps-{uuid.uuid4().hex[:8]}"
    chain = [
        {"task": "jobs.examples.add", "args": [4, 4]},
        {"task": "jobs.examples.mul", "args": [8]},
    ]
    cluster.configure(
        namespace=NS, jobs={"chained": {"cron": "0 0 1 1 *", "queue": queue, "chain": chain}},
        extra_settings={"message_key_file": str(key_file)},
    )  # fmt: skip
    steps = worker(cluster, queue)
    cluster.wait_worker_ready(steps)
    key, payload, ident = signed_chain_fire(cluster, "chained", 1_800_000_000)
    cluster.state().lpush(key, payload)
    # Known from its reports alone (no history entry: this test sent the fire itself).
    row = finished_fire(cluster, "chained", ident)
    assert (row["outcome"], outcomes(row)) == (
        "succeeded",
        [(0, "jobs.examples.add", "succeeded"), (1, "jobs.examples.mul", "succeeded")],
    )
    assert "refused a message" not in steps.tail()
