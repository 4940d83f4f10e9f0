"""The pure rules of scheduler/metrics.py: which jobs get per-job series, how a dispatch's
answers become outcomes, histogram buckets, and NodeStats's counts. No I/O."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler.dispatch import Sent
from scheduler.engine import Due
from scheduler.jobspec import JobSpec
from scheduler.metrics import (
    LATENESS_BUCKETS_S,
    Buckets,
    NodeStats,
    PerOutcome,
    attribute,
    labelled_jobs,
    outcome_counts,
)
from scheduler.records import MissedRange
from scheduler.triggers import EveryTrigger

T0 = 1_800_000_000


def job(name: str) -> JobSpec:
    return JobSpec(
        name=name,
        task="t",
        kind="every",
        schedule="1s",
        timezone=ZoneInfo("UTC"),
        trigger=EveryTrigger(1, datetime(1970, 1, 1, tzinfo=UTC)),
        misfire_grace=timedelta(minutes=5),
    )


def test_the_first_jobs_by_name_get_series_and_a_later_name_moves_nothing() -> None:
    assert labelled_jobs(["d", "b", "a", "c"], 2) == {"a", "b"}
    assert labelled_jobs(["d", "b", "a", "c", "zz"], 2) == {"a", "b"}
    assert labelled_jobs(["b", "a"], 10) == {"a", "b"}
    assert labelled_jobs(["a"], 0) == frozenset()


def test_every_answer_of_the_claims_has_its_outcome() -> None:
    sent = Sent(fired=5, paused=1, already=2, outbox_full=3, handed_back=4, skipped_overlap=6)
    assert outcome_counts(22, sent) == {
        "enqueued": 5, "skipped_paused": 1, "skipped_overlap": 6, "already_fired": 2,
        "outbox_full": 3, "handed_back": 4, "corrupt": 1,
    }  # fmt: skip
    assert outcome_counts(3, Sent(fired=3)) == {"enqueued": 3}
    assert outcome_counts(0, Sent()) == {}


def counted(
    found: tuple[PerOutcome, Counter[int]],
) -> tuple[dict[str, Counter[str]], Counter[int]]:
    per_outcome, slots = found
    counts = {outcome: Counter(names) for outcome, names in per_outcome.items()}
    return {outcome: n for outcome, n in counts.items() if n}, slots


def test_a_clean_burst_is_attributed_to_each_job() -> None:
    fires = [(job("a"), T0), (job("a"), T0 + 1), (job("b"), T0)]
    per_job, slots = counted(attribute(fires, [], frozenset({"a", "b"})))
    assert per_job == {"enqueued": {"a": 2, "b": 1}}
    assert slots == {T0: 2, T0 + 1: 1}
    per_job, _ = counted(attribute(fires, [], frozenset({"a"})))
    assert per_job == {"enqueued": {"a": 2}}
    per_job, _ = counted(attribute(fires, [], frozenset({"a", "b"}), True))
    assert per_job == {"enqueued": {"a": 2, "b": 1}}


def test_a_mixed_dispatch_is_attributed_fire_by_fire() -> None:
    fires = [(job("a"), T0), (job("b"), T0), (job("b"), T0 + 1), (job("c"), T0 + 1)]
    detail = [("b", T0, "skipped_paused"), ("c", T0 + 1, "handed_back")]
    per_job, slots = counted(attribute(fires, detail, frozenset({"a", "b"})))
    assert per_job == {"enqueued": {"a": 1, "b": 1}, "skipped_paused": {"b": 1}}
    assert slots == {T0: 1, T0 + 1: 1}  # lateness of every enqueued fire, labelled or not
    paused = [("a", T0, "skipped_paused"), ("b", T0, "skipped_paused")]
    per_job, slots = counted(attribute(fires[:2], paused, frozenset({"a"})))
    assert per_job == {"skipped_paused": {"a": 1}}
    assert slots == {}


def test_a_value_on_a_bound_falls_in_that_bucket() -> None:
    buckets = Buckets((0.001, 0.01))
    buckets.add(0.001)
    buckets.add(0.005, times=2)
    buckets.add(7.0)
    snap = buckets.snapshot()
    assert snap.buckets == [("0.001", 1), ("0.01", 3), ("+Inf", 4)]
    assert snap.count == 4
    assert abs(snap.sum - 7.011) < 1e-9
    assert LATENESS_BUCKETS_S[0] == 0.001
    assert LATENESS_BUCKETS_S[-1] >= 300


def test_node_stats_counts_a_dispatch_within_the_bound_only() -> None:
    stats = NodeStats()
    jobs = {name: job(name) for name in ("a", "b", "c")}
    stats.follow(lambda: jobs, lambda: 2)
    due = Due(
        fires=[(jobs["a"], T0), (jobs["b"], T0), (jobs["c"], T0)],
        missed=[MissedRange("c", T0 - 600, T0 - 400, 3, "misfire_grace")],
    )
    stats.dispatched(due, Sent(fired=3, missed_ranges=1), T0 + 0.02)
    snap = stats.snapshot()
    assert snap.fires == {"enqueued": 3}
    assert snap.job_fires == {("a", "enqueued"): 1, ("b", "enqueued"): 1}
    assert snap.missed == {"misfire_grace": 3}
    assert snap.lateness.count == 3
    assert dict(snap.lateness.buckets)["0.01"] == 0
    assert dict(snap.lateness.buckets)["0.025"] == 3


def test_a_smaller_bound_drops_the_series_of_jobs_it_leaves_out() -> None:
    stats = NodeStats()
    jobs = {name: job(name) for name in ("a", "b")}
    limit = [2]
    stats.follow(lambda: jobs, lambda: limit[0])
    stats.dispatched(Due(fires=[(jobs["a"], T0), (jobs["b"], T0)]), Sent(fired=2), T0)
    limit[0] = 1
    assert stats.labelled() == {"a"}
    assert stats.snapshot().job_fires == {("a", "enqueued"): 1}


def test_a_mixed_dispatch_counts_in_the_totals_and_per_job() -> None:
    stats = NodeStats()
    jobs = {"a": job("a"), "b": job("b")}
    stats.follow(lambda: jobs, lambda: 10)
    sent = Sent(fired=1, paused=1, not_enqueued=[("b", T0, "skipped_paused")])
    stats.dispatched(Due(fires=[(jobs["a"], T0), (jobs["b"], T0)]), sent, T0)
    snap = stats.snapshot()
    assert snap.fires == {"enqueued": 1, "skipped_paused": 1}
    assert snap.skipped == {"paused": 1}
    assert snap.job_fires == {("a", "enqueued"): 1, ("b", "skipped_paused"): 1}
    assert snap.lateness.count == 1


def test_counts_from_two_threads_add_up() -> None:
    stats = NodeStats()
    jobs = {"a": job("a")}
    stats.follow(lambda: jobs, lambda: 1)

    def dispatch() -> None:
        for _ in range(2000):
            stats.dispatched(Due(fires=[(jobs["a"], T0)]), Sent(fired=1), T0)
            stats.turned(0.001)

    threads = [threading.Thread(target=dispatch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for _ in range(200):
        stats.snapshot()  # a scrape meanwhile
    for thread in threads:
        thread.join(timeout=30)
    snap = stats.snapshot()
    assert snap.job_fires == {("a", "enqueued"): 4000}
    assert snap.lateness.count == snap.loop.count == 4000


def test_without_a_listener_nothing_is_counted_per_job() -> None:
    stats = NodeStats()
    stats.dispatched(Due(fires=[(job("a"), T0)]), Sent(fired=1), T0)
    assert stats.snapshot().job_fires == {}
    assert stats.snapshot().fires == {"enqueued": 1}
