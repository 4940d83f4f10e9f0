"""``H``: a per-job, per-field value from BLAKE2b of the job name and field, stable everywhere."""

from __future__ import annotations

import hashlib

import pytest

from scheduler.errors import InvalidSchedule
from scheduler.triggers import compile_cron
from scheduler.triggers.cron.hashed import field_hash

from .helpers import cron, next_slots

NAME = "nightly-report"
# The first 8 bytes of BLAKE2b(b"nightly-report\0minute"): a constant, not Python's salted hash().
MINUTE = 2_277_777_005_714_250_344
HOUR, DOM, MONTH, DOW = (
    field_hash(NAME, f) for f in ("hour", "day-of-month", "month", "day-of-week")
)


def test_the_hash_is_the_documented_one() -> None:
    digest = hashlib.blake2b(b"nightly-report\0minute", digest_size=8).digest()
    assert int.from_bytes(digest, "big") == field_hash(NAME, "minute") == MINUTE


@pytest.mark.parametrize(
    ("text", "resolved"),
    [
        ("H * * * *", f"{MINUTE % 60} * * * *"),
        ("H H * * *", f"{MINUTE % 60} {HOUR % 24} * * *"),  # one number per field
        ("H/15 * * * *", f"{MINUTE % 15}-59/15 * * * *"),
        ("H(0-29) * * * *", f"{MINUTE % 30} * * * *"),
        ("H(10-20)/5 * * * *", f"{10 + MINUTE % 5}-20/5 * * * *"),
        ("0 0 H * *", f"0 0 {1 + DOM % 28} * *"),  # day-of-month H stays in 1-28
        ("0 0 * * H", f"0 0 * * {DOW % 7}"),  # day-of-week H stays in 0-6
        ("0 0 1 H *", f"0 0 1 {1 + MONTH % 12} *"),
        ("0 0 * * H(MON-FRI)", f"0 0 * * {1 + DOW % 5}"),
        # Six fields: the minute is still the minute's number (keyed by name, not position).
        ("0 H * * * *", f"0 {MINUTE % 60} * * * *"),
        ("h,30 * * * *", f"{MINUTE % 60},30 * * * *"),
        ("0 0 * * THU", "0 0 * * THU"),  # a name containing H is not a hash
    ],
)
def test_h_resolves_from_the_field_hash(text: str, resolved: str) -> None:
    assert compile_cron(text, NAME).text == resolved


def test_exact_values_for_one_name() -> None:
    # Written out, so a change of hash function cannot hide behind the formula above. Moved
    # once in issue 12 (one CRC-32 for every field -> a hash per field): "36 0" -> "44 20",
    # "6-59/15" -> "14-59/15".
    assert compile_cron("H H * * *", NAME).text == "44 20 * * *"
    assert compile_cron("H H H H H", NAME).text == "44 20 11 3 5"
    assert compile_cron("H H H H H H", NAME).text == "37 44 20 11 3 5"
    assert compile_cron("H/15 * * * *", NAME).text == "14-59/15 * * * *"
    assert next_slots(cron("H/15 * * * *", job_name=NAME), "2026-01-01T00:00:00Z", 5) == [
        "2026-01-01T00:14:00Z",
        "2026-01-01T00:29:00Z",
        "2026-01-01T00:44:00Z",
        "2026-01-01T00:59:00Z",
        "2026-01-01T01:14:00Z",
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
