"""Chain and group fires in history rows: the whole and each step, from the workers' reports.
Pure, with a fixed "now"."""

from __future__ import annotations

from scheduler.history import Composition, HistoryEntry, WorkerEvent, rows
from scheduler.wire import member_id, task_id

NS = "steps"
SLOT = 1_800_000_000
NOW = SLOT + 3600.0
T0 = SLOT * 1000 + 250
CHAIN = Composition("chain", ("add", "mul"))
GROUP = Composition("group", ("a", "b", "c"))
STEP_KEYS = ["step", "task", "task_id", "outcome", "started_at", "duration_s", "worker", "error"]


def fire(job: str) -> HistoryEntry:
    return HistoryEntry(entry_ms=T0, job=job, kind="scheduled", slot_s=SLOT, token="3")


def ran(ident: str, at_ms: int, outcome: str, **extra: object) -> list[WorkerEvent]:
    """A run's started and finished reports, 40 ms apart."""
    return [
        WorkerEvent(at_ms, "started", "", ident, worker="w@h", **extra),  # type: ignore[arg-type]
        WorkerEvent(at_ms + 40, outcome, "", ident, worker="w@h", duration_s=0.04, **extra),  # type: ignore[arg-type]
    ]


def test_a_chain_whose_steps_all_succeeded_succeeded_as_a_whole() -> None:
    ident = task_id(NS, "ch", SLOT)
    events = {"ch": [*ran(ident, T0 + 10, "succeeded"),
                     *ran("step-1", T0 + 60, "succeeded", step=1, fire=ident)]}  # fmt: skip
    [row] = rows(NS, [fire("ch")], events, [], NOW, {"ch": CHAIN})
    assert (row["outcome"], row["duration_s"], row["error"]) == ("succeeded", 0.09, None)
    assert [list(step) for step in row["steps"]] == [STEP_KEYS, STEP_KEYS]
    assert [(s["step"], s["task"], s["task_id"], s["outcome"]) for s in row["steps"]] == [
        (0, "add", ident, "succeeded"),
        (1, "mul", "step-1", "succeeded"),
    ]
    assert row["steps"][1]["duration_s"] == 0.04


def test_a_chain_whose_second_step_failed_failed_with_that_steps_error() -> None:
    ident = task_id(NS, "ch", SLOT)
    events = {"ch": [*ran(ident, T0 + 10, "succeeded"),
                     *ran("step-1", T0 + 60, "failed", step=1, fire=ident, error="TypeError: x")]}  # fmt: skip
    [row] = rows(NS, [fire("ch")], events, [], NOW, {"ch": CHAIN})
    assert (row["outcome"], row["error"]) == ("failed", "step 1: TypeError: x")
    assert [(s["outcome"], s["error"]) for s in row["steps"]] == [
        ("succeeded", None),
        ("failed", "TypeError: x"),
    ]


def test_a_chain_with_a_step_still_to_come_is_running() -> None:
    ident = task_id(NS, "ch", SLOT)
    events = {"ch": ran(ident, T0 + 10, "succeeded")}
    [row] = rows(NS, [fire("ch")], events, [], NOW, {"ch": CHAIN})
    assert (row["outcome"], row["duration_s"]) == ("running", None)
    assert [s["outcome"] for s in row["steps"]] == ["succeeded", "pending"]
    assert row["steps"][1]["task_id"] is None


def test_a_chain_nobody_reported_reads_as_its_fire() -> None:
    [row] = rows(NS, [fire("ch")], {}, [], NOW, {"ch": CHAIN})
    assert row["outcome"] == "unknown"
    assert [s["outcome"] for s in row["steps"]] == ["pending", "pending"]


def test_a_group_is_the_whole_of_its_members_by_their_ids() -> None:
    ident = task_id(NS, "fan", SLOT)
    members = [member_id(ident, i) for i in range(3)]
    events = {"fan": [*ran(members[0], T0 + 10, "succeeded", step=0),
                      *ran(members[2], T0 + 12, "succeeded", step=2)]}  # fmt: skip
    [row] = rows(NS, [fire("fan")], events, [], NOW, {"fan": GROUP})
    assert row["outcome"] == "running"
    assert [(s["task_id"], s["outcome"]) for s in row["steps"]] == [
        (members[0], "succeeded"),
        (None, "pending"),
        (members[2], "succeeded"),
    ]
    events["fan"] += ran(members[1], T0 + 11, "succeeded", step=1)
    [row] = rows(NS, [fire("fan")], events, [], NOW, {"fan": GROUP})
    assert (row["outcome"], row["duration_s"]) == ("succeeded", 0.042)
    events["fan"] += ran(members[1], T0 + 90, "failed", step=1, error="E: no")
    [row] = rows(NS, [fire("fan")], events, [], NOW, {"fan": GROUP})
    assert (row["outcome"], row["error"]) == ("failed", "step 1: E: no")


def test_steps_are_not_listed_again_as_runs_of_their_own() -> None:
    ident = task_id(NS, "ch", SLOT)
    events = {"ch": [*ran(ident, T0 + 10, "succeeded"),
                     *ran("step-1", T0 + 60, "succeeded", step=1, fire=ident)]}  # fmt: skip
    found = rows(NS, [fire("ch")], events, [], NOW, {"ch": CHAIN})
    assert [row["task_id"] for row in found] == [ident]


def test_a_chain_whose_fire_left_the_history_is_still_one_whole() -> None:
    ident = task_id(NS, "ch", SLOT)
    events = {"ch": [*ran(ident, T0 + 10, "succeeded"),
                     *ran("step-1", T0 + 60, "succeeded", step=1, fire=ident)]}  # fmt: skip
    [row] = rows(NS, [], events, [], NOW, {"ch": CHAIN})
    assert (row["task_id"], row["outcome"]) == (ident, "succeeded")
    assert [s["task_id"] for s in row["steps"]] == [ident, "step-1"]


def test_a_plain_job_keeps_its_row_exactly() -> None:
    ident = task_id(NS, "plain", SLOT)
    events = {"plain": ran(ident, T0 + 10, "succeeded")}
    composed = rows(NS, [fire("plain")], events, [], NOW, {"ch": CHAIN})
    assert composed == rows(NS, [fire("plain")], events, [], NOW)
    assert "steps" not in composed[0]
