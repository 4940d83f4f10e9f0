"""A worker report's fields as read back: a hostile `step` is one unreadable line, never a
crash (int() refuses "²" and strings of thousands of digits)."""

from __future__ import annotations

import pytest

from scheduler.store.reports import Unreadable, _worker_event

BASE = {b"event": b"succeeded", b"task_id": b"t1", b"slot": b"2026-12-02T00:00:00Z"}


@pytest.mark.parametrize("step", [b"\xc2\xb2", b"9" * 5000, b"-1", b"1.5", b""])
def test_a_step_that_is_not_a_small_number_is_unreadable(step: bytes) -> None:
    found = _worker_event("ns:reports:j", b"1-0", {**BASE, b"step": step})
    assert isinstance(found, Unreadable)
    assert found.found.startswith("a report with step ")


def test_a_small_step_is_read() -> None:
    found = _worker_event("ns:reports:j", b"1-0", {**BASE, b"step": b"2"})
    assert not isinstance(found, Unreadable)
    assert found.step == 2
