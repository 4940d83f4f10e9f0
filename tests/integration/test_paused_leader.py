"""A leader paused past its lease cannot enqueue under its old token when it wakes up."""

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
    slot_text,
    under_other_tokens,
)

NAMESPACE = "it-paused"
JOBS = ("alpha", "beta")
LEASE_TTL_S = 1.0
RUN_S = 3


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_woken_leader_sends_nothing_after_its_lease_ended(
    cluster: Cluster, parked: ParkedQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    lease_ttl = f"{int(LEASE_TTL_S * 1000)}ms"
    cluster.configure(namespace=NAMESPACE, lease_ttl=lease_ttl, jobs=catching_up(*JOBS))
    first = cluster.bring_up("n1", "n2")
    window_first_s = math.ceil(time.time()) + 1
    parked.wait_for_slots(JOBS, window_first_s + RUN_S)

    paused = cluster.signal_leader(first, signal.SIGSTOP)
    # The lease was last renewed before this instant, so it ended by lease_ended_at at the latest.
    lease_ended_at = time.time() + LEASE_TTL_S
    try:
        second = cluster.wait_for_successor(first)
        # Keep it frozen until the new leader has fired slots it could have stolen.
        parked.wait_for(
            lambda messages: any(
                m.slot_s > lease_ended_at + 1 for m in under_other_tokens(first.token, messages)
            ),
            what="the new leader to fire past the old lease",
        )
    finally:
        paused.signal(signal.SIGCONT)
    woken_at = time.time()

    # The woken node runs its loop again right away; give it several slots to misbehave in.
    parked.wait_for_slots(JOBS, math.ceil(woken_at) + RUN_S)
    window_last_s = math.floor(time.time()) - 2

    messages = parked.messages()
    old = [m for m in messages if m.token == first.token]
    late = sorted({m.slot for m in old if m.slot_s > lease_ended_at})
    with capsys.disabled():
        print(
            f"\npaused leader {first.node_id} (token {first.token}): lease ended by "
            f"{slot_text(math.floor(lease_ended_at))}, its newest slot "
            f"{slot_text(max(m.slot_s for m in old)) if old else None}; new leader "
            f"{second.node_id} (token {second.token}); woke {woken_at - lease_ended_at:.2f}s after"
        )
    assert not late, f"old token {first.token} enqueued slots after its lease ended: {late}"
    check_every_slot_once(messages, JOBS, window_first_s, window_last_s)
    check_no_repeats(messages)
