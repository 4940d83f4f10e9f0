"""Scenario 3: the state Redis (also the broker) crashes and comes back on the same port.

With its data (append-only file synced before every reply): nothing is lost; the slots due
while it was down are caught up, each exactly once. Without its data: the loss is bounded (the
slots due while it was away, and up to one lease TTL and a second after), reported ("state
lost" in the log, ``state_lost`` in `status`), the fencing token still grows, and no slot from
before the restart is fired afterwards (no flood of old slots).
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import pytest

from scheduler.lease import LeaseHolder
from tests.integration.harness import PARKED, Children, Fired, catching_up, fired_messages

from .nodes import ChaosCluster
from .observe import fenced_claims, pairs_of, tally
from .results import Figures, pick, seed
from .servers import RedisProcess
from .window import close_window, count_window, open_window

NODES = ("n1", "n2")
JOBS = ("alpha", "beta")
LEASE_TTL_S = 1.0
RESTARTS = pick(1, 10)
DOWN_S = pick((2.0, 2.0), (0.5, 5.0))  # how long Redis stays down: (least, most)
TIMEOUT_S = pick(120, 900)
STATE_LOST = "state lost"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(TIMEOUT_S)]


def start_cluster(children: Children, redis_server: RedisProcess, tmp_path: Path) -> ChaosCluster:
    redis_server.start()
    cluster = ChaosCluster(children, tmp_path / "scheduler.toml", redis_server.url)
    cluster.configure(
        namespace="chaos-restart",
        lease_ttl=f"{int(LEASE_TTL_S * 1000)}ms",
        jobs=catching_up(*JOBS),
    )
    cluster.bring_up_all(*NODES)
    return cluster


def crash_and_restart(
    cluster: ChaosCluster, redis_server: RedisProcess, rng: random.Random, figures: Figures
) -> tuple[float, LeaseHolder, LeaseHolder]:
    """Crash Redis, keep it down a while, start it again; (when it was up again, the lease
    before, the lease after). With its data and a short outage the old lease may survive."""
    old = cluster.wait_holder()
    redis_server.kill()
    figures.faults += 1
    time.sleep(rng.uniform(*DOWN_S))  # the outage itself: slots fall due meanwhile
    redis_server.start()
    up_at = time.time()
    first = cluster.wait_first_claim_after(up_at)
    figures.gap(first.at_ms / 1000 - up_at)
    new = cluster.wait_holder()
    assert new.token >= old.token, f"token went from {old.token} to {new.token}"
    return up_at, old, new


def test_redis_restart_with_data_loses_nothing(
    children: Children, restartable_redis: RedisProcess, tmp_path: Path, figures: Figures
) -> None:
    figures.scenario = "Redis crash and restart, with its data (AOF, fsync always)"
    rng = random.Random(seed(figures))
    restartable_redis.persistent = True
    cluster = start_cluster(children, restartable_redis, tmp_path)
    window_first_s = open_window(cluster, JOBS)
    for _ in range(RESTARTS):
        crash_and_restart(cluster, restartable_redis, rng, figures)
        cluster.wait_claimed(JOBS, math.ceil(time.time()) + 1)
    window_last_s = close_window(cluster, JOBS)

    messages = fired_messages(cluster.client(), PARKED)
    run = count_window(cluster, messages, JOBS, window_first_s, window_last_s)
    run.record(figures)
    status = cluster.status()

    assert run.at_broker.exact, run.at_broker.describe("parked queue")
    assert not fenced_claims(run.claims)
    assert not status.get("state_lost"), status
    assert not [c.name for c in children.started if STATE_LOST in c.log_text()]


def test_redis_restart_without_data_is_bounded_and_reported(
    children: Children, restartable_redis: RedisProcess, tmp_path: Path, figures: Figures
) -> None:
    figures.scenario = "Redis crash and restart, without its data"
    rng = random.Random(seed(figures))
    restartable_redis.persistent = False
    cluster = start_cluster(children, restartable_redis, tmp_path)
    window_first_s = open_window(cluster, JOBS)

    segments: list[list[Fired]] = []  # what the broker held between two restarts
    restarted_at: list[float] = []
    for _ in range(RESTARTS):
        # Freeze writes, read what the broker holds, then crash: nothing slips in between.
        client = cluster.client()
        client.client_pause(10_000, all=False)
        segments.append(fired_messages(client, PARKED))
        up_at, old, new = crash_and_restart(cluster, restartable_redis, rng, figures)
        # The lease went with the data: a new one, under a larger token.
        assert (new.token, new.nonce) != (old.token, old.nonce)
        assert new.token > old.token, f"token went from {old.token} to {new.token}"
        restarted_at.append(up_at)
        cluster.wait_claimed(JOBS, math.ceil(time.time()) + 1)
    window_last_s = close_window(cluster, JOBS)
    segments.append(fired_messages(cluster.client(), PARKED))
    status = cluster.status()

    problems: list[str] = []
    for index, segment in enumerate(segments):
        for job in JOBS:
            slots = sorted(m.slot_s for m in segment if m.job == job)
            if not slots:
                problems.append(f"segment {index}: nothing of {job}")
                continue
            # Within a segment: every slot from its first to its last, once.
            if slots != list(range(slots[0], slots[-1] + 1)):
                problems.append(f"segment {index}: {job} not each slot once: {slots}")
            if index == 0 and slots[0] > window_first_s:
                problems.append(f"{job} started late: {slots[0]} > {window_first_s}")
            if index > 0:
                up_at = restarted_at[index - 1]
                if slots[0] < math.floor(up_at):  # a flood of slots from before the restart
                    problems.append(f"{job}: slot {slots[0]} fired after a restart at {up_at:.3f}")
                if slots[0] > up_at + LEASE_TTL_S + 2:  # the loss must stay bounded
                    problems.append(f"{job}: first slot {slots[0]} long after restart {up_at:.3f}")
    seen = [pair for segment in segments for pair in pairs_of(segment)]
    overall = tally(seen, JOBS, window_first_s, window_last_s)
    figures.count_at_broker(overall)  # its missing were lost with the data: reported, bounded
    figures.notes["missing_means"] = "lost with the data, by design"
    figures.notes["state_lost"] = status.get("state_lost")
    reporters = [c.name for c in children.started if STATE_LOST in c.log_text()]

    assert not problems, problems
    assert not overall.repeated, overall.describe("all segments")
    assert not overall.unexpected, overall.describe("all segments")
    assert status.get("state_lost"), f"`status --json` does not report the lost state: {status}"
    assert reporters, "no node logged that the state was lost"
