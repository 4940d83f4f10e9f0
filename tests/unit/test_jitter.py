"""Jitter is a pure function of (job, slot): pinned values, so every node and every release
computes the same delay (a change here would move sends across an upgrade)."""

import pytest

from scheduler.jitter import jitter_s

T0 = 1_800_000_000


@pytest.mark.parametrize(
    ("job", "slot_s", "jitter_max_s", "next_s", "expected"),
    [
        ("report", T0, 30, None, 21),
        ("report", T0 + 60, 30, None, 14),
        ("backup", T0, 3600, None, 3203),
        ("backup", T0, 3600, T0 + 10, 8),  # the next slot is 10 s away: the window is 10 s
    ],
)
def test_pinned_values(
    job: str, slot_s: int, jitter_max_s: int, next_s: int | None, expected: int
) -> None:
    assert jitter_s(job, slot_s, jitter_max_s, next_s) == expected


def test_within_the_window_and_before_the_next_slot() -> None:
    delays = {jitter_s(f"job-{i}", T0, 30, None) for i in range(2000)}
    assert delays == set(range(30))  # every whole second of [0, 30) is used, none outside
    assert {jitter_s(f"job-{i}", T0, 3600, T0 + 5) for i in range(500)} == set(range(5))


def test_no_room_means_no_delay() -> None:
    assert jitter_s("a", T0, 1, None) == 0  # a window of 1 s holds only 0
    assert jitter_s("a", T0, 30, T0 + 1) == 0  # an every-1s job cannot move at all


def test_depends_on_job_and_slot_only() -> None:
    assert jitter_s("report", T0, 30, None) == jitter_s("report", T0, 30, None)
    assert jitter_s("report", T0, 30, None) != jitter_s("report", T0 + 60, 30, None)
