"""`overlap = "skip"` end to end: a real node, a real prefork Celery worker (two processes, so
runs could overlap if the scheduler let them) and a task that naps 3 s, fired every second.
While a run goes on, each slot is recorded as a missed range with reason "overlap"; exactly
one run goes at a time; a job that allows overlap fires every second meanwhile."""

from __future__ import annotations

import itertools
import json
import signal
import sys
import uuid
from typing import Any

from tests.integration.harness import (
    Cluster,
    ParkedQueue,
    check_every_slot_once,
    every_second,
    slot_text,
)

NAP_S = 3
LOG_KEY = "overlap-test:runs"
NS = "ov"


def runs(state: Any) -> dict[str, dict[str, float]]:
    """What the task logged, by slot: {"start": t, "end": t}."""
    found: dict[str, dict[str, float]] = {}
    for raw in state.lrange(LOG_KEY, 0, -1):
        event = json.loads(raw)
        found.setdefault(event["slot"], {})[event["event"]] = event["at"]
    return found


def test_a_long_run_makes_the_next_slots_skipped_and_runs_never_overlap(
    cluster: Cluster, parked: ParkedQueue
) -> None:
    nap = {"task": "tests.integration.slow_tasks.nap", "every": "1s", "queue": "slow",
           "overlap": "skip", "kwargs": {"seconds": NAP_S, "log_key": LOG_KEY}}  # fmt: skip
    cluster.configure(namespace=NS, jobs={"nap": nap, "beat": every_second()})
    command = [
        sys.executable, "-m", "celery", "-A", "tests.integration.slow_tasks", "worker",
        "--pool=prefork", "--concurrency=2", "--without-mingle", "--without-gossip",
        "--without-heartbeat", "-Q", "slow", "-n", f"slow.{uuid.uuid4().hex[:8]}@%h",
        "--loglevel=INFO",
    ]  # fmt: skip
    worker = cluster.children.start("worker", command, cluster.env)
    cluster.wait_worker_ready(worker)  # before the node: the first slot is taken at once
    node = cluster.start_node("n1")
    cluster.wait_for_leader()
    state = cluster.state()
    cluster.wait_until(
        lambda: sum("end" in run for run in runs(state).values()) >= 2,
        timeout_s=20, what="two naps to end",
    )  # fmt: skip
    node.signal(signal.SIGTERM)
    assert node.wait_exit(10) == 0

    history: Any = state.xrange(f"{NS}:history")
    missed: Any = state.xrange(f"{NS}:missed")
    fired = sorted(
        int(fields[b"slot"])
        for _, fields in history
        if fields[b"job"] == b"nap" and b"kind" not in fields
    )
    skipped = [
        {k.decode(): v.decode() for k, v in fields.items() if k != b"token"} for _, fields in missed
    ]
    skipped_slots = sorted(int(gap["first"]) for gap in skipped)
    assert all(
        gap == {"job": "nap", "first": gap["first"], "last": gap["first"], "count": "1",
                "reason": "overlap"}
        for gap in skipped
    ), skipped  # fmt: skip
    # Every second from the first fire to the last slot decided was fired or skipped, once.
    watermark = int(state.hget(f"{NS}:watermarks", "nap"))  # type: ignore[arg-type]
    assert sorted(fired + skipped_slots) == list(range(fired[0], watermark + 1))
    assert len(fired) >= 2
    # After each fire, the slots until its run ended were skipped: NAP_S - 1 of them at least.
    for before, after in itertools.pairwise(fired):
        assert after - before >= NAP_S, f"fired {slot_text(before)} then {slot_text(after)}"

    # Each fired slot ran once, and no two runs overlapped (the last may still be running).
    cluster.wait_until(
        lambda: all("end" in run for run in runs(state).values()) or None,
        timeout_s=NAP_S + 5, what="the last nap to end",
    )  # fmt: skip
    ran = runs(state)
    assert sorted(ran) == [slot_text(slot) for slot in fired]
    spans = sorted((run["start"], run["end"]) for run in ran.values())
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end, f"a run started at {start} before the previous ended at {end}"

    # The job that allows overlap fired every second meanwhile.
    beats = [m for m in parked.messages() if m.job == "beat"]
    check_every_slot_once(beats, ["beat"], fired[0], watermark)
