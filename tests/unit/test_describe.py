"""Schedules and spans in words, as `jobs list` shows them."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from scheduler.describe import cron_words, left_words, passed_words, schedule_words
from scheduler.jobspec import JobSpec, build_job
from scheduler.listing import written_schedule


def _job(name: str, **table: object) -> JobSpec:
    problems: list[str] = []
    job = build_job(Path("t.toml"), name, {"task": "t", **table}, ZoneInfo("UTC"), problems)
    assert job is not None, problems
    return job


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("0 9 * * 1-5", "At 09:00, Monday through Friday"),
        ("*/5 * * * *", "Every 5 minutes"),
        ("30 8 * * MON#2", "At 08:30, on the second Monday of the month"),
        ("0 0 L * *", "At 00:00, on the last day of the month"),
        ("0 12 15W * *", "At 12:00, on the weekday nearest day 15 of the month"),
        ("0 18 LW * *", "At 18:00, on the last weekday of the month"),
        ("0 18 LW * MON", "At 18:00, on the last weekday of the month, or on Monday"),
        ("*/10 * * * * *", "Every 10 seconds"),
        # Either day field may match: the library's wording is ours.
        ("0 0 1,15 * MON", "At 00:00, on day 1 and 15 of the month, or on Monday"),
        # A day field written from "*" makes both apply (Vixie cron): not the library's "or".
        (
            "0 0 1-31/2 * MON",
            "At 00:00, every 2 days, between day 1 and 31 of the month, or on Monday",
        ),
        ("0 0 */2 * MON", "At 00:00, every 2 days, and only on Monday"),
    ],
)
def test_cron_in_words(expression: str, words: str) -> None:
    assert cron_words(expression) == words


def test_h_is_described_as_resolved() -> None:
    job = _job("backup", cron="H 3 * * *")
    resolved = written_schedule(job)
    assert resolved.startswith("H 3 * * * = ")
    minute = int(resolved.split(" = ")[1].split()[0])
    assert schedule_words(job) == f"At 03:{minute:02d}"


def test_h_is_described_as_resolved_in_every_field() -> None:
    # Each field draws its own number (issue 12): the words show the time the job really has.
    job = _job("nightly-report", cron="H H * * *")
    assert written_schedule(job) == "H H * * * = 44 20 * * *"
    assert schedule_words(job) == "At 20:44"


@pytest.mark.parametrize(
    ("table", "start", "words"),
    [
        ({"weeks": 2, "at": "09:00"}, "2026-01-05T00:00:00",
         "Every 2 weeks at 09:00, from Monday 2026-01-05"),
        ({"months": 3, "at": "09:00"}, "2026-01-15T00:00:00",
         "Every 3 months on the 15th at 09:00, from Thursday 2026-01-15"),
        ({"months": 1, "at": "12:00"}, "2026-01-31T00:00:00",
         "Every month on the 31st at 12:00, from Saturday 2026-01-31"
         " (skipped in months without a 31st)"),
        ({"years": 1, "at": "06:00"}, "2028-02-29T00:00:00",
         "Every year on 29 February at 06:00, from Tuesday 2028-02-29"
         " (skipped in years without one)"),
        ({"days": 1, "at": "02:30:15"}, "2026-01-05T10:00:00",
         "Every day at 02:30:15, from Monday 2026-01-05 10:00"),
        ({"weeks": 1}, "2026-01-01T00:00:00", "Every week at 00:00, from Thursday 2026-01-01"),
        ({"years": 2, "at": "18:00"}, "2026-07-04T00:00:00",
         "Every 2 years on 4 July at 18:00, from Saturday 2026-07-04"),
    ],
)  # fmt: skip
def test_calendar_in_words(table: dict[str, object], start: str, words: str) -> None:
    job = _job("c", calendar=table, start=start, timezone="Europe/Berlin")
    assert schedule_words(job) == words


def test_a_bounded_schedule_is_described_by_its_own_words() -> None:
    # end and max_runs wrap the trigger; they are shown beside the words, not in them.
    assert schedule_words(_job("b", cron="0 9 * * 1-5", end="2027-01-01T00:00:00Z")) == (
        "At 09:00, Monday through Friday"
    )
    calendar = {"weeks": 2, "at": "09:00"}
    job = _job("c", calendar=calendar, start="2026-01-05T00:00:00", max_runs=3)
    assert schedule_words(job) == "Every 2 weeks at 09:00, from Monday 2026-01-05"


def test_every_and_at_in_words() -> None:
    assert schedule_words(_job("a", every="90m")) == "Every 1 hour 30 minutes"
    assert schedule_words(_job("b", every=60)) == "Every minute"
    assert schedule_words(_job("c", at="2026-12-01T09:00:00+01:00")) == "Once"


def test_a_form_the_library_cannot_read_is_shown_as_written() -> None:
    assert cron_words("not cron") == "not cron"


@pytest.mark.parametrize(
    ("seconds", "left", "passed"),
    [
        (0.4, "now", "just now"),
        (12, "in 12 s", "12 s ago"),
        (180, "in 3 min", "3 min ago"),
        (7500, "in 2 h 5 min", "2 h 5 min ago"),
        (3 * 86400 + 5, "in 3 days", "3 days ago"),
        (None, None, None),
    ],
)
def test_spans(seconds: float | None, left: str | None, passed: str | None) -> None:
    assert left_words(seconds) == left
    assert passed_words(seconds) == passed
