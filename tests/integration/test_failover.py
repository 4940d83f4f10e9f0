"""Killing the leader loses no slot and enqueues none twice (broker = the state Redis)."""

from __future__ import annotations

import math
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from .harness import (
    Children,
    Cluster,
    check_every_slot_once,
    fired_messages,
    newest_slot_s,
    task_id_for,
    wait_until,
    write_config,
)

NAMESPACE = "it-failover"
QUEUE = "parked"  # no worker consumes it, so the list keeps every message
JOBS = ("alpha", "beta", "gamma")
RUN_S = 4  # seconds of slots to see on each side of the failover


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_killed_leader_hands_over_every_slot_exactly_once(
    redis_server: Any, children: Children, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = redis_server.client()
    config = write_config(
        tmp_path / "scheduler.toml",
        redis_url=redis_server.url,
        namespace=NAMESPACE,
        lease_ttl="1s",
        jobs={
            name: {
                "task": "jobs.examples.ping",
                "every": "1s",
                "queue": QUEUE,
                "catchup": "all",  # the new leader fires what fell in the gap
                "misfire_grace": "1m",
            }
            for name in JOBS
        },
    )
    cluster = Cluster(children, config)
    for node_id in ("n1", "n2", "n3"):
        cluster.start_node(node_id)
    first = cluster.wait_for_leader()
    window_first_s = math.ceil(time.time()) + 1  # all nodes up, a leader firing

    def reached(second: int) -> bool:
        newest = newest_slot_s(fired_messages(broker, QUEUE), JOBS)
        return newest is not None and newest >= second

    wait_until(lambda: reached(window_first_s + RUN_S), timeout_s=30, what="slots before the kill")

    old_leader, old_token = first["leader"], int(first["fencing_token"])
    cluster.nodes[old_leader].signal(signal.SIGKILL)
    killed_at = time.time()

    # The failover gap, seen from the broker: the first message under another token.
    wait_until(
        lambda: any(m.token != old_token for m in fired_messages(broker, QUEUE)),
        timeout_s=30,
        what="a message from a new leader",
        interval_s=0.05,
    )
    first_new_message_at = time.time()
    second = cluster.wait_for_leader(other_than={old_leader})
    new_leader_seen_at = time.time()
    assert int(second["fencing_token"]) > old_token

    resumed_s = math.ceil(first_new_message_at) + RUN_S
    wait_until(lambda: reached(resumed_s), timeout_s=30, what="slots after the failover")
    window_last_s = math.floor(time.time()) - 2  # slots this recent may still be in flight

    messages = fired_messages(broker, QUEUE)
    new_tokens = sorted({m.token for m in messages} - {old_token})
    with capsys.disabled():  # shown on every run: the number is the point of the exercise
        print(
            f"\nfailover: killed {old_leader} (token {old_token}); first message of the new leader "
            f"{second['leader']} (tokens {new_tokens}) {first_new_message_at - killed_at:.2f}s "
            f"after the kill; `status` showed it {new_leader_seen_at - killed_at:.2f}s after"
        )
    assert window_last_s - window_first_s >= RUN_S  # the window spans the failover
    check_every_slot_once(messages, JOBS, window_first_s, window_last_s)
    # Outside the window too, nothing is repeated, and every id is the promised one.
    assert len({(m.job, m.slot) for m in messages}) == len(messages)
    assert all(m.task_id == task_id_for(NAMESPACE, m.job, m.slot) for m in messages)
