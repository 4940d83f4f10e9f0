"""SIGTERM hands the lease over: the standby takes it at once, and no slot is lost or repeated.

The lease TTL is 2 s, so a takeover that waited for the lease to expire would be visibly slower
than a handover; the gaps are printed, not asserted (timings are the benchmark's business).
"""

from __future__ import annotations

import itertools
import math
import signal
import time

import pytest
import redis

from scheduler.store.keys import Keys

from .harness import (
    Cluster,
    Fired,
    ParkedQueue,
    catching_up,
    check_every_slot_once,
    check_no_repeats,
    under_other_tokens,
    wait_until,
)

NAMESPACE = "it-handover"
JOBS = ("alpha", "beta")
LEASE_TTL = "2s"
RUN_S = 3  # seconds of slots to see on each side of the handover
EXIT_BOUND_S = 10.0  # a stopping node must be gone well within systemd's TimeoutStopSec


def enqueue_times_ms(client: redis.Redis) -> list[tuple[int, str, int]]:
    """(Redis time in ms, job, slot) of every fire, from the IDs of the fire history stream."""
    entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(Keys(NAMESPACE).history)  # type: ignore[assignment]
    return [
        (int(entry_id.split(b"-")[0]), fields[b"job"].decode(), int(fields[b"slot"]))
        for entry_id, fields in entries
    ]


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_sigterm_hands_the_lease_over_without_gap_or_repeat(
    cluster: Cluster, parked: ParkedQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster.configure(namespace=NAMESPACE, lease_ttl=LEASE_TTL, jobs=catching_up(*JOBS))
    first = cluster.bring_up("n1", "n2")
    # Both nodes up and heartbeating: the standby is waiting before the window starts.
    cluster.wait_for_records("n1", "n2")
    window_first_s = math.ceil(time.time()) + 1
    parked.wait_for_slots(JOBS, window_first_s + RUN_S)

    (standby,) = {"n1", "n2"} - {first.node_id}
    waker = redis.Redis.from_url(cluster.redis_url, socket_timeout=10, socket_connect_timeout=2)
    try:
        stopping = cluster.signal_leader(first, signal.SIGTERM)
        sigterm_at = time.time()
        # The release pushes wake-ups for blocked standbys; we can pop one of them too.
        woken = waker.blpop([Keys(NAMESPACE).handover], timeout=5)
        woken_at = time.time()
    finally:
        waker.close()
    assert woken is not None, "no handover wake-up was pushed after SIGTERM"

    def first_new(messages: list[Fired]) -> Fired | None:
        newer = under_other_tokens(first.token, messages)
        return min(newer, key=lambda m: m.slot_s) if newer else None

    seen_at: dict[str, float] = {}

    def exited_and_replaced() -> bool:
        now = time.time()
        if "exit" not in seen_at and not stopping.alive():
            seen_at["exit"] = now
        if "message" not in seen_at and first_new(parked.messages()):
            seen_at["message"] = now
        return len(seen_at) == 2

    wait_until(
        exited_and_replaced,
        timeout_s=EXIT_BOUND_S,
        what=f"{first.node_id} to exit and a message under a new token",
        interval_s=0.02,
        on_timeout=cluster.children.log_tails,
    )
    assert stopping.wait_exit(0) == 0, stopping.tail()
    assert f"lease released by node {first.node_id}" in stopping.log_text()
    after = cluster.status()
    assert after["leader"] == standby
    new_token = int(after["fencing_token"])
    assert new_token > first.token
    # The stopped node removed its own record on the way out; it does not linger for seconds.
    assert [n["node_id"] for n in after["nodes"]] == [standby]

    window_last_s = math.ceil(seen_at["message"]) + RUN_S
    messages = parked.wait_for_slots(JOBS, window_last_s)

    fires = [f for f in enqueue_times_ms(parked.client) if window_first_s <= f[2] <= window_last_s]
    gaps_ms = [later[0] - earlier[0] for earlier, later in itertools.pairwise(fires)]
    late_ms = [at_ms - slot * 1000 for at_ms, _, slot in fires]
    handover_message = first_new(messages)
    assert handover_message is not None
    with capsys.disabled():  # shown on every run: the numbers are the point of the exercise
        print(
            f"\nhandover: SIGTERM to {first.node_id} (token {first.token}); wake-up popped after "
            f"{(woken_at - sigterm_at) * 1000:.0f} ms; {first.node_id} exited 0 after "
            f"{seen_at['exit'] - sigterm_at:.3f}s; first message of {standby} (token "
            f"{new_token}, slot {handover_message.slot}) seen {seen_at['message'] - sigterm_at:.3f}s"
            f" after SIGTERM; largest gap between enqueues {max(gaps_ms)} ms; latest slot "
            f"enqueued {max(late_ms)} ms after its time (lease_ttl {LEASE_TTL})"
        )

    assert {m.token for m in messages} == {first.token, new_token}
    for job in JOBS:  # one leader after the other, never interleaved
        old_slots = [m.slot_s for m in messages if m.job == job and m.token == first.token]
        new_slots = [m.slot_s for m in messages if m.job == job and m.token == new_token]
        assert old_slots, f"{job}: nothing under the old token"
        assert new_slots, f"{job}: nothing under the new token"
        assert max(old_slots) < min(new_slots), f"{job}: the two leaders' slots interleave"
    check_every_slot_once(messages, JOBS, window_first_s, window_last_s)
    check_no_repeats(messages, namespace=NAMESPACE)
