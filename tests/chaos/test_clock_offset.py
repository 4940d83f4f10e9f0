"""Scenario 7: clock offsets, through the node's hidden ``--clock-offset`` test knob.

A node whose clock is further from Redis TIME than ``max_clock_offset`` (1 s) refuses to lead,
says so in its log and in `status` (clock_ok false, its offset in ms), and never takes the lease,
even when the healthy leader is killed again and again. Two healthy nodes, one a little ahead
and one a little behind (within the limit), take turns leading; every slot reaches the broker
exactly once and none is claimed earlier than the limit allows.
"""

from __future__ import annotations

import random
import time

import pytest

from tests.integration.harness import PARKED, catching_up, fired_messages

from .nodes import ChaosCluster
from .observe import fenced_claims
from .results import Figures, pick, seed
from .window import close_window, count_window, open_window

JOBS = ("alpha", "beta")
MAX_OFFSET_S = 1.0
# Healthy nodes, within the limit: one ahead of Redis, one behind.
HEALTHY = {"ahead": 0.6, "behind": -0.6}
# Refused nodes, beyond it.
SKEWED = pick({"skewed": 5.0}, {"skewed": 5.0, "skewed-back": -5.0})
KILLS = pick(3, 30)
TIMEOUT_S = pick(150, 1200)
REFUSING = "refusing leadership"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(TIMEOUT_S)]


def test_skewed_node_never_leads_and_slots_stay_exact(
    cluster: ChaosCluster, figures: Figures
) -> None:
    figures.scenario = "clock offset: one node 5 s off (refused), two within ±0.6 s"
    rng = random.Random(seed(figures))
    cluster.configure(
        namespace="chaos-clock",
        lease_ttl="1s",
        jobs=catching_up(*JOBS),
        extra_settings={"max_clock_offset": f"{int(MAX_OFFSET_S * 1000)}ms"},
    )
    for node_id, offset_s in {**SKEWED, **HEALTHY}.items():
        cluster.node_args[node_id] = ["--clock-offset", str(offset_s)]

    # The skewed nodes alone first: nobody may take the lease while they are all there is.
    started_at = time.time()
    skewed = {node_id: cluster.start_node(node_id) for node_id in SKEWED}
    figures.faults += len(SKEWED)
    holders_seen: set[str] = set()

    def refusing_for_a_while() -> bool:
        holder = cluster.holder()
        if holder is not None:
            holders_seen.add(holder.node_id)
        records = cluster.node_records()
        return all(
            node_id in records
            and records[node_id]["clock_ok"] is False
            and float(records[node_id]["seen_at"]) > started_at + 3 * MAX_OFFSET_S + 3
            and REFUSING in child.log_text()
            for node_id, child in skewed.items()
        )

    cluster.wait_until(
        refusing_for_a_while,
        timeout_s=30,
        what="the skewed nodes to refuse leadership for several heartbeats",
        interval_s=0.05,
    )
    status = cluster.status()
    assert not holders_seen, f"a skewed node took the lease: {holders_seen}"
    assert status["leader"] is None, status
    shown = {n["node_id"]: n for n in status["nodes"]}
    for node_id, offset_s in SKEWED.items():
        assert shown[node_id]["clock_ok"] is False, shown[node_id]
        # Offset = Redis TIME minus the node's clock: a node ahead shows a negative offset.
        assert abs(shown[node_id]["clock_offset_ms"] + offset_s * 1000) < 250, shown[node_id]

    healthy = [(node_id, cluster.start_node(node_id)) for node_id in HEALTHY]
    for node_id, child in healthy:
        cluster.wait_heartbeat(node_id, child)
    cluster.wait_holder(among=HEALTHY)
    window_first_s = open_window(cluster, JOBS)

    for _ in range(KILLS):
        killed, gap_s = cluster.kill_leader(rng)
        figures.faults += 1
        figures.gap(gap_s)
        holder = cluster.wait_holder()
        holders_seen |= {killed.node_id, holder.node_id}
    window_last_s = close_window(cluster, JOBS, ahead_s=1)

    messages = fired_messages(cluster.client(), PARKED)
    run = count_window(cluster, messages, JOBS, window_first_s, window_last_s)
    claims = run.claims
    early = [c for c in claims if c.at_ms < (c.slot_s - MAX_OFFSET_S) * 1000]
    run.record(figures)
    figures.notes["earliest_claim_ms"] = min(c.at_ms - c.slot_s * 1000 for c in claims)
    figures.notes["leaders"] = sorted(holders_seen)
    skewed_led = [
        child.name
        for child in cluster.children.started
        if child.name.removeprefix("node-").split(".")[0] in SKEWED
        and "leading with fencing token" in child.log_text()
    ]

    assert holders_seen <= set(HEALTHY), f"leaders: {holders_seen}"
    assert not skewed_led, f"skewed nodes led: {skewed_led}"
    assert all(child.alive() for child in skewed.values())
    assert run.at_broker.exact, run.at_broker.describe("parked queue")
    assert not fenced_claims(claims)
    assert not early, f"claimed more than {MAX_OFFSET_S}s before the slot: {early[:5]}"
