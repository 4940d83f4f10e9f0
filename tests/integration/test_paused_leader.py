"""A leader paused past its lease cannot enqueue under its old token when it wakes up."""

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
    slot_text,
    wait_until,
    write_config,
)

NAMESPACE = "it-paused"
QUEUE = "parked"  # no worker consumes it, so the list keeps every message
JOBS = ("alpha", "beta")
LEASE_TTL_S = 1.0
RUN_S = 3


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_woken_leader_sends_nothing_after_its_lease_ended(
    redis_server: Any, children: Children, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = redis_server.client()
    config = write_config(
        tmp_path / "scheduler.toml",
        redis_url=redis_server.url,
        namespace=NAMESPACE,
        lease_ttl=f"{int(LEASE_TTL_S * 1000)}ms",
        jobs={
            name: {
                "task": "jobs.examples.ping",
                "every": "1s",
                "queue": QUEUE,
                "catchup": "all",
                "misfire_grace": "1m",
            }
            for name in JOBS
        },
    )
    cluster = Cluster(children, config)
    for node_id in ("n1", "n2"):
        cluster.start_node(node_id)
    first = cluster.wait_for_leader()
    window_first_s = math.ceil(time.time()) + 1

    def messages_reach(second: float) -> bool:
        newest = newest_slot_s(fired_messages(broker, QUEUE), JOBS)
        return newest is not None and newest >= second

    wait_until(lambda: messages_reach(window_first_s + RUN_S), timeout_s=30, what="early slots")

    old_leader, old_token = first["leader"], int(first["fencing_token"])
    paused = cluster.nodes[old_leader]
    paused.signal(signal.SIGSTOP)
    # The lease was last renewed before this instant, so it ended by lease_ended_at at the latest.
    lease_ended_at = time.time() + LEASE_TTL_S
    try:
        second = cluster.wait_for_leader(other_than={old_leader})
        # Keep it frozen until the new leader has fired slots it could have stolen.
        wait_until(
            lambda: any(
                m.token != old_token and m.slot_s > lease_ended_at + 1
                for m in fired_messages(broker, QUEUE)
            ),
            timeout_s=30,
            what="the new leader to fire past the old lease",
        )
    finally:
        paused.signal(signal.SIGCONT)
    woken_at = time.time()

    # The woken node runs its loop again right away; give it several slots to misbehave in.
    wait_until(
        lambda: messages_reach(math.ceil(woken_at) + RUN_S), timeout_s=30, what="later slots"
    )
    window_last_s = math.floor(time.time()) - 2

    messages = fired_messages(broker, QUEUE)
    old_slots = [m.slot_s for m in messages if m.token == old_token]
    late = sorted({m.slot for m in messages if m.token == old_token and m.slot_s > lease_ended_at})
    with capsys.disabled():
        print(
            f"\npaused leader {old_leader} (token {old_token}): lease ended by "
            f"{slot_text(math.floor(lease_ended_at))}, its newest slot "
            f"{slot_text(max(old_slots)) if old_slots else None}; new leader {second['leader']} "
            f"(token {second['fencing_token']}); woke {woken_at - lease_ended_at:.2f}s after"
        )
    assert not late, f"old token {old_token} enqueued slots after its lease ended: {late}"
    check_every_slot_once(messages, JOBS, window_first_s, window_last_s)
    assert len({(m.job, m.slot) for m in messages}) == len(messages)
