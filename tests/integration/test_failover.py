"""Killing the leader loses no slot and enqueues none twice (broker = the state Redis)."""

from __future__ import annotations

import math
import signal
import time

import pytest

from .harness import (
    Cluster,
    ParkedQueue,
    catching_up,
    check_every_slot_once,
    check_no_repeats,
    under_other_tokens,
)

NAMESPACE = "it-failover"
JOBS = ("alpha", "beta", "gamma")
RUN_S = 4  # seconds of slots to see on each side of the failover


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_killed_leader_hands_over_every_slot_exactly_once(
    cluster: Cluster, parked: ParkedQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every job catches up: the new leader fires what fell in the gap.
    cluster.configure(namespace=NAMESPACE, lease_ttl="1s", jobs=catching_up(*JOBS))
    first = cluster.bring_up("n1", "n2", "n3")
    window_first_s = math.ceil(time.time()) + 1  # all nodes up, a leader firing
    parked.wait_for_slots(JOBS, window_first_s + RUN_S)

    cluster.signal_leader(first, signal.SIGKILL)
    killed_at = time.time()

    # The failover gap, seen from the broker: the first message under another token.
    parked.wait_for(
        lambda messages: under_other_tokens(first.token, messages),
        what="a message from a new leader",
        interval_s=0.05,
    )
    first_new_message_at = time.time()
    second = cluster.wait_for_successor(first)
    new_leader_seen_at = time.time()
    assert second.token > first.token

    resumed_s = math.ceil(first_new_message_at) + RUN_S
    parked.wait_for_slots(JOBS, resumed_s)
    window_last_s = math.floor(time.time()) - 2  # slots this recent may still be in flight

    messages = parked.messages()
    new_tokens = sorted({m.token for m in messages} - {first.token})
    with capsys.disabled():  # shown on every run: the number is the point of the exercise
        print(
            f"\nfailover: killed {first.node_id} (token {first.token}); first message of the new "
            f"leader {second.node_id} (tokens {new_tokens}) {first_new_message_at - killed_at:.2f}s "
            f"after the kill; `status` showed it {new_leader_seen_at - killed_at:.2f}s after"
        )
    assert window_last_s - window_first_s >= RUN_S  # the window spans the failover
    check_every_slot_once(messages, JOBS, window_first_s, window_last_s)
    # Outside the window too, nothing is repeated, and every id is the promised one.
    check_no_repeats(messages, namespace=NAMESPACE)
