"""The window of slots a chaos test asserts on: opened once the run is in its stride, closed once
whatever the faults left undone is done, and what the run left in it, tallied."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tests.integration.harness import Fired

from .nodes import ChaosCluster
from .observe import (
    Claim,
    Tally,
    first_seen_out_of_order,
    pairs_of,
    tally,
    wrong_task_ids,
)
from .results import Figures


def open_window(cluster: ChaosCluster, jobs: Iterable[str]) -> int:
    """The window's first slot: the second after the coming one, once every one of `jobs` has
    claimed the slot after it (so the run is in its stride before the first fault)."""
    first_s = math.ceil(time.time()) + 1
    cluster.wait_claimed(jobs, first_s + 1)
    return first_s


def close_window(cluster: ChaosCluster, jobs: Iterable[str], *, ahead_s: int = 0) -> int:
    """The window's last slot: the current second (plus `ahead_s`), once every one of `jobs` has
    claimed two slots past it. Slots after the window are claimed too: whatever a fault left is
    done by then."""
    last_s = math.ceil(time.time()) + ahead_s
    cluster.wait_claimed(jobs, last_s + 2)
    return last_s


@dataclass(frozen=True)
class Counted:
    """What a run left in its window [first_s, last_s], tallied per (job, slot)."""

    messages: list[Fired]  # the parked jobs' messages, as read at the broker
    claims: list[Claim]  # every claim in the fire history, in the window or not
    at_broker: Tally  # of `messages`
    claimed: Tally  # of every job's claims, the worked job's too
    executed: Tally  # of the worked job's executions (nothing expected without one)
    worked_job: str | None

    def record(self, figures: Figures, *also_at_broker: Tally) -> None:
        """Write the counts to `figures`; `also_at_broker`: other queues' tallies that count."""
        figures.count_at_broker(self.at_broker, *also_at_broker)
        if self.worked_job is not None:  # without a worker the executed figures stay n/a
            figures.count_executed(self.executed)


def count_window(
    cluster: ChaosCluster,
    messages: Sequence[Fired],
    parked_jobs: Sequence[str],
    first_s: int,
    last_s: int,
    *,
    worked_job: str | None = None,
) -> Counted:
    """Tally `messages` (of `parked_jobs`), every job's claims, and `worked_job`'s executions
    over the window [first_s, last_s]."""
    claims = cluster.claims()
    worked_jobs = [worked_job] if worked_job is not None else []
    executions = cluster.executions() if worked_jobs else []
    return Counted(
        messages=list(messages),
        claims=claims,
        at_broker=tally(pairs_of(messages), parked_jobs, first_s, last_s),
        claimed=tally(pairs_of(claims), [*parked_jobs, *worked_jobs], first_s, last_s),
        executed=tally(pairs_of(executions), worked_jobs, first_s, last_s),
        worked_job=worked_job,
    )


def assert_outbox_promise(run: Counted, namespace: str, parked_jobs: Sequence[str]) -> None:
    """What a broker other than the state's Redis is promised (docs/guarantees.md): each slot
    claimed exactly once, each at the broker at least once (a repeat keeps its task id), in
    slot order per job, and the worked job run exactly once by the worker's run-once hook."""
    assert run.claimed.exact, run.claimed.describe("claims")  # the claim is fencing-checked
    assert run.at_broker.complete, run.at_broker.describe("parked queue")
    assert not wrong_task_ids(run.messages, namespace)  # so a repeat has the same id
    assert not first_seen_out_of_order(run.messages, parked_jobs)
    assert run.executed.complete, run.executed.describe("executions")
    assert run.executed.repeats == 0, run.executed.describe("executions")
