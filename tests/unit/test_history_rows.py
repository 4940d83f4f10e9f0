"""History rows from fires, worker reports and missed ranges: pure, with a fixed "now"."""

from __future__ import annotations

from scheduler.history import (
    REPORT_WAIT_S,
    HistoryEntry,
    SlotRange,
    WorkerEvent,
    detail,
    rows,
)
from scheduler.wire import task_id

NS = "hist"
SLOT = 1_800_000_000  # 2027-01-15T08:00:00Z
NOW = SLOT + 3600.0


def fire(job: str, slot_s: int, late_ms: int = 250, **extra: object) -> HistoryEntry:
    return HistoryEntry(
        entry_ms=slot_s * 1000 + late_ms,
        job=job,
        kind="scheduled",
        slot_s=slot_s,
        token="7",
        **extra,
    )  # type: ignore[arg-type]


def event(ident: str, at_ms: int, name: str, **extra: object) -> WorkerEvent:
    return WorkerEvent(entry_ms=at_ms, event=name, slot="", task_id=ident, **extra)  # type: ignore[arg-type]


def test_a_succeeded_fire_has_its_lateness_duration_worker_and_task_id() -> None:
    ident = task_id(NS, "a", SLOT)
    t0 = SLOT * 1000 + 250
    events = {"a": [
        event(ident, t0 + 5, "received", worker="w1@h"),
        event(ident, t0 + 9, "started", worker="w1@h"),
        event(ident, t0 + 1500, "succeeded", worker="w1@h", duration_s=1.491),
    ]}  # fmt: skip
    [row] = rows(NS, [fire("a", SLOT)], events, [], NOW)
    assert row["slot"] == "2027-01-15T08:00:00Z"
    assert row["task_id"] == ident
    assert row["lateness_s"] == 0.25
    assert row["enqueued_at"] == "2027-01-15T08:00:00.250Z"
    assert row["started_at"] == "2027-01-15T08:00:00.259Z"
    assert (row["outcome"], row["duration_s"], row["worker"], row["error"]) == (
        "succeeded", 1.491, "w1@h", None,
    )  # fmt: skip
    assert row["attempts"] == 1


def test_a_received_after_the_run_finished_is_a_repeat_not_the_outcome() -> None:
    ident = task_id(NS, "a", SLOT)
    t0 = SLOT * 1000
    events = {"a": [
        event(ident, t0 + 1, "received"), event(ident, t0 + 2, "started"),
        event(ident, t0 + 3, "failed", error="ValueError: bad input", duration_s=0.1),
        event(ident, t0 + 4, "received"),
    ]}  # fmt: skip
    [row] = rows(NS, [fire("a", SLOT)], events, [], NOW)
    assert (row["outcome"], row["error"]) == ("failed", "ValueError: bad input")


def test_a_retried_run_that_then_succeeded_shows_no_error_and_two_attempts() -> None:
    ident = task_id(NS, "a", SLOT)
    t0 = SLOT * 1000
    events = {"a": [
        event(ident, t0 + 1, "started"), event(ident, t0 + 2, "retried", error="Retry: x"),
        event(ident, t0 + 3, "received"), event(ident, t0 + 4, "started"),
        event(ident, t0 + 5, "succeeded", duration_s=0.5),
    ]}  # fmt: skip
    [row] = rows(NS, [fire("a", SLOT)], events, [], NOW)
    assert (row["outcome"], row["error"], row["attempts"], row["duration_s"]) == (
        "succeeded", None, 2, 0.5,
    )  # fmt: skip


def test_a_fire_nobody_reported_is_enqueued_then_unknown() -> None:
    entry = fire("a", SLOT)
    sent_s = entry.entry_ms / 1000
    [fresh] = rows(NS, [entry], {}, [], sent_s + REPORT_WAIT_S - 1)
    [stale] = rows(NS, [entry], {}, [], sent_s + REPORT_WAIT_S)
    assert (fresh["outcome"], stale["outcome"]) == ("enqueued", "unknown")


def test_an_operator_fire_uses_its_own_task_id_and_a_fire_written_twice_is_one_row() -> None:
    manual = HistoryEntry(entry_ms=SLOT * 1000 + 5000, job="a", kind="manual", slot_s=SLOT,
                          task_id="m-1")  # fmt: skip
    events = {"a": [event("m-1", SLOT * 1000 + 5020, "succeeded")]}
    found = rows(NS, [fire("a", SLOT), fire("a", SLOT, late_ms=900), manual], events, [], NOW)
    assert [(r["kind"], r["task_id"], r["outcome"]) for r in found] == [
        ("manual", "m-1", "succeeded"),
        ("scheduled", task_id(NS, "a", SLOT), "unknown"),
    ]
    assert found[1]["lateness_s"] == 0.25  # the first enqueue, not the repeat's


def test_ranges_and_decisions_are_rows_and_a_covered_skip_is_listed_once() -> None:
    ranges = [
        SlotRange("a", SLOT + 60, SLOT + 120, 2, "overlap"),
        SlotRange("b", SLOT, SLOT + 300, 6, "outbox_full", open=True),
    ]
    skip_covered = HistoryEntry(SLOT * 1000 + 60_005, "a", "skipped", SLOT + 60, reason="overlap")
    skip_alone = HistoryEntry(SLOT * 1000 + 900_000, "c", "skipped", SLOT + 900, reason="overlap")
    alert = HistoryEntry(SLOT * 1000 + 1_000_000, "a", "alert", None, reason="no success in 2h")
    found = rows(NS, [fire("a", SLOT), skip_covered, skip_alone, alert], {}, ranges, NOW)
    assert [(r["job"], r["kind"], r["outcome"]) for r in found] == [
        ("a", "alert", "alert"),
        ("c", "skipped", "skipped"),
        ("b", "missed", "missed"),
        ("a", "skipped", "skipped"),
        ("a", "scheduled", "unknown"),
    ]
    assert [detail(r) for r in found] == [
        "no success in 2h",
        "overlap",
        "outbox_full, 6 slots through 2027-01-15T08:05:00Z, still open",
        "overlap, 2 slots through 2027-01-15T08:02:00Z",
        None,
    ]
    assert {tuple(sorted(r)) for r in found} == {tuple(sorted(found[0]))}  # one shape


def test_events_of_one_millisecond_keep_their_stream_order() -> None:
    # A fast task is started and succeeds within a millisecond; the stream's sequence numbers
    # still order them, whatever order they are read in (the reader goes newest first).
    ident = task_id(NS, "a", SLOT)
    t0 = SLOT * 1000 + 5
    events = {"a": [
        event(ident, t0, "succeeded", entry_seq=1, duration_s=0.001),
        event(ident, t0, "started", entry_seq=0),
    ]}  # fmt: skip
    [row] = rows(NS, [fire("a", SLOT, 3)], events, [], SLOT + 1)
    assert row["outcome"] == "succeeded"
