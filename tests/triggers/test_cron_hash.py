"""``H``: a per-job value from CRC-32 of the job name, stable everywhere."""

from __future__ import annotations

import zlib

import pytest

from scheduler.errors import InvalidSchedule
from scheduler.triggers import compile_cron

from .helpers import cron, next_slots

NAME = "nightly-report"
CRC = 2_217_464_496  # zlib.crc32(b"nightly-report"): a constant, not Python's salted hash()


def test_the_crc_is_the_documented_one() -> None:
    assert zlib.crc32(NAME.encode("utf-8")) == CRC


@pytest.mark.parametrize(
    ("text", "resolved"),
    [
        ("H * * * *", f"{CRC % 60} * * * *"),
        ("H H * * *", f"{CRC % 60} {CRC % 24} * * *"),  # one CRC for every field
        ("H/15 * * * *", f"{CRC % 15}-59/15 * * * *"),
        ("H(0-29) * * * *", f"{CRC % 30} * * * *"),
        ("H(10-20)/5 * * * *", f"{10 + CRC % 5}-20/5 * * * *"),
        ("0 0 H * *", f"0 0 {1 + CRC % 28} * *"),  # day-of-month H stays in 1-28
        ("0 0 * * H", f"0 0 * * {CRC % 7}"),  # day-of-week H stays in 0-6
        ("0 0 1 H *", f"0 0 1 {1 + CRC % 12} *"),
        ("0 0 * * H(MON-FRI)", f"0 0 * * {1 + CRC % 5}"),
        ("H 0 * * * *", f"{CRC % 60} 0 * * * *"),
        ("h,30 * * * *", f"{CRC % 60},30 * * * *"),
        ("0 0 * * THU", "0 0 * * THU"),  # a name containing H is not a hash
    ],
)
def test_h_resolves_from_the_crc(text: str, resolved: str) -> None:
    assert compile_cron(text, NAME).text == resolved


def test_exact_values_for_one_name() -> None:
    # Written out, so a change of hash function cannot hide behind the formula above.
    assert compile_cron("H H * * *", NAME).text == "36 0 * * *"
    assert compile_cron("H/15 * * * *", NAME).text == "6-59/15 * * * *"
    assert next_slots(cron("H/15 * * * *", job_name=NAME), "2026-01-01T00:00:00Z", 5) == [
        "2026-01-01T00:06:00Z",
        "2026-01-01T00:21:00Z",
        "2026-01-01T00:36:00Z",
        "2026-01-01T00:51:00Z",
        "2026-01-01T01:06:00Z",
    ]


def test_names_spread_out_and_repeat_exactly() -> None:
    minutes = {compile_cron("H * * * *", f"job-{i}").times.minutes for i in range(200)}
    assert len(minutes) > 40
    assert compile_cron("H * * * *", "a") is compile_cron("H * * * *", "a")


def test_identical_resolved_texts_share_one_object() -> None:
    first = compile_cron("*/5 * * * *", "a")
    assert compile_cron("*/5   *  * * *", "b") is first
    by_name = {name: compile_cron("H * * * *", name) for name in ("a", "b", "c")}
    for name, expression in by_name.items():
        same_minute = compile_cron(expression.text, "other")
        assert same_minute is expression, name


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("H(5-1) * * * *", 'minute field: reversed range "5-1"; write "5-59,0-1"'),
        ("H(0-60) * * * *", "minute 60 is out of range 0-59"),
        ("H/90 * * * *", 'minute field: step 90 in "H/90" is longer than the range 0-59'),
        ("H/0 * * * *", 'minute field: step must be a whole number >= 1 in "H/0"'),
        ("H(0-10 * * * *", 'minute field: cannot read "H(0-10"'),
        ("Hx * * * *", 'minute field: cannot read "Hx"'),
        ("H(0-10)x * * * *", 'minute field: cannot read "H(0-10)x"'),
        ("0 0 H/29 * *", 'day-of-month field: step 29 in "H/29" is longer than the range 1-28'),
    ],
)
def test_h_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        compile_cron(text, NAME)
    assert str(caught.value) == message
