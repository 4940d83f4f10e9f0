"""SIGHUP reloads the config of a running leader: a good file adds jobs at once, a bad one is
refused with the same one line `scheduler validate` prints, and the node carries on as it was."""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from .harness import (
    Children,
    Cluster,
    Fired,
    check_every_slot_once,
    fired_messages,
    task_id_for,
    wait_for_slots,
    wait_until,
    write_config,
)

NAMESPACE = "it-reload"
QUEUE = "parked"  # no worker consumes it, so the list keeps every message
RUN_S = 2


def every_second(**extra: object) -> dict[str, object]:
    return {"task": "jobs.examples.ping", "every": "1s", "queue": QUEUE, **extra}


def of(job: str, messages: list[Fired]) -> list[Fired]:
    return [m for m in messages if m.job == job]


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_sighup_adds_a_job_and_refuses_a_bad_config(
    redis_server: Any, children: Children, tmp_path: Path
) -> None:
    broker = redis_server.client()
    path = tmp_path / "scheduler.toml"

    def write(jobs: Mapping[str, Mapping[str, object]]) -> None:
        write_config(
            path, redis_url=redis_server.url, namespace=NAMESPACE, lease_ttl="1s", jobs=jobs
        )

    write({"A": every_second()})
    cluster = Cluster(children, path)
    node = cluster.start_node("n1")
    cluster.wait_for_leader()
    window_first_s = math.ceil(time.time()) + 1
    wait_for_slots(broker, QUEUE, ["A"], window_first_s + RUN_S, on_timeout=children.log_tails)

    # (a) A good file with one more job: B starts firing, A goes on untouched.
    write({"A": every_second(), "B": every_second()})
    good_hash = cluster.config_hash()
    reload_at = time.time()
    node.signal(signal.SIGHUP)
    wait_until(
        lambda: f"config reloaded: 2 jobs, hash {good_hash}" in node.log_text(),
        timeout_s=15,
        what="the reload to be logged",
        on_timeout=node.tail,
    )
    b_seen = wait_until(
        lambda: of("B", fired_messages(broker, QUEUE)) or None,
        timeout_s=15,
        what="B's first slot",
        on_timeout=node.tail,
    )
    b_first_s = min(m.slot_s for m in b_seen)
    # A new job starts at the leader's "now": nothing from before it existed.
    assert b_first_s > math.floor(reload_at), (b_first_s, reload_at)
    wait_for_slots(broker, QUEUE, ["A", "B"], b_first_s + RUN_S, on_timeout=node.tail)

    # (c) `scheduler validate` refuses the bad file with one line and exit code 2.
    # `status` needs a valid file; the node keeps reading `path`, which turns bad below.
    good_copy = tmp_path / "good.toml"
    good_copy.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    never = {"task": "jobs.examples.ping", "cron": "0 0 30 2 *", "queue": QUEUE}
    write({"A": every_second(), "B": every_second(), "X": never})
    refused = cluster.cli("validate")
    assert refused.returncode == 2, refused
    assert refused.stdout == ""
    assert "Traceback" not in refused.stderr
    (reason,) = refused.stderr.splitlines()
    assert (
        reason
        == "scheduler.toml: jobs.X.cron: never fires (day-of-month 30 never occurs in February)"
    )

    # (b) The running node refuses it too, says why in one line, and keeps the last good config.
    node.signal(signal.SIGHUP)
    refusal = f"reload refused, keeping the running config: {reason}"
    wait_until(
        lambda: refusal in node.log_text(),
        timeout_s=15,
        what="the refusal to be logged",
        on_timeout=node.tail,
    )
    refused_at = time.time()
    refusals = [line for line in node.log_text().splitlines() if "reload refused" in line]
    assert len(refusals) == 1, refusals
    assert refusals[0].endswith(refusal), refusals
    window_last_s = math.ceil(refused_at) + RUN_S
    messages = wait_for_slots(broker, QUEUE, ["A", "B"], window_last_s, on_timeout=node.tail)
    assert node.alive()
    assert "Traceback" not in node.log_text()
    status = Cluster(children, good_copy).status()
    assert status["leader"] == "n1"
    (record,) = status["nodes"]
    assert record["config_hash"] == good_hash  # still running the last good config

    check_every_slot_once(of("A", messages), ["A"], window_first_s, window_last_s)
    check_every_slot_once(of("B", messages), ["B"], b_first_s, window_last_s)
    assert {m.job for m in messages} == {"A", "B"}  # X never fired
    assert len({(m.job, m.slot) for m in messages}) == len(messages)
    assert all(m.task_id == task_id_for(NAMESPACE, m.job, m.slot) for m in messages)
