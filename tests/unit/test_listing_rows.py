"""The rows of `jobs list`: order, outcome words and where each fact lands."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from scheduler.jobspec import JobSpec, build_job
from scheduler.listing import JobFacts, human_row, job_rows
from scheduler.store.state import Unreadable

NOW_S = 1_767_225_720.0  # 2026-01-01T00:02:00Z


def _job(name: str, **table: object) -> JobSpec:
    problems: list[str] = []
    job = build_job(Path("t.toml"), name, {"task": "t", **table}, ZoneInfo("UTC"), problems)
    assert job is not None, problems
    return job


JOBS = {
    "daily": (_job("daily", cron="0 9 * * *"), "config"),
    "often": (_job("often", every="30s"), "runtime"),
    "done": (_job("done", at="2025-12-31T00:00:00Z"), "config"),
    "hourly": (_job("hourly", cron="0 * * * *"), "config"),
}


def test_rows_are_sorted_by_next_run_and_finished_jobs_come_last() -> None:
    rows = job_rows(JOBS, NOW_S, JobFacts())
    assert [(r["name"], r["next_in_s"]) for r in rows] == [
        ("often", 30), ("hourly", 3480), ("daily", 32280), ("done", None),
    ]  # fmt: skip
    assert [r["source"] for r in rows] == ["runtime", "config", "config", "config"]


def test_outcome_words() -> None:
    facts = JobFacts(
        last_fires={"daily": 1_767_200_000, "often": 1_767_225_690, "hourly": 1_767_222_000},
        outcomes={"daily": {"outcome": "failed"}, "often": {"outcome": "started"}},
        last_missed={"hourly": 1_767_225_600, "done": 1_767_139_200},
    )
    outcome = {r["name"]: r["outcome"] for r in job_rows(JOBS, NOW_S, facts)}
    # hourly: its newest missed range is newer than its last fire.
    assert outcome == {"daily": "failed", "often": "running", "hourly": "missed", "done": "missed"}
    facts = JobFacts(last_fires={"daily": 1_767_200_000})
    outcome = {r["name"]: r["outcome"] for r in job_rows(JOBS, NOW_S, facts)}
    assert outcome == {"daily": "unknown", "often": None, "hourly": None, "done": None}


def test_unreadable_lands_on_the_rows_it_concerns() -> None:
    whole = Unreadable("ns:paused", "a hash, not a set")
    one = Unreadable("ns:last_fire", "'x', not \"<slot> <token>\"", "often")
    rows = {r["name"]: r for r in job_rows(JOBS, NOW_S, JobFacts(unreadable=[whole, one]))}
    assert rows["often"]["unreadable"] == [whole, one]
    assert rows["daily"]["unreadable"] == [whole]


def test_human_cells() -> None:
    facts = JobFacts(last_fires={"often": 1_767_225_708})
    row = next(r for r in job_rows(JOBS, NOW_S, facts) if r["name"] == "often")
    cells = human_row(row)
    assert cells["schedule"] == "Every 30 seconds (30s)"
    assert (cells["next"], cells["left"]) == ("Thu 2026-01-01 00:02:30 UTC", "in 30 s")
    assert (cells["last"], cells["passed"]) == ("Thu 2026-01-01 00:01:48 UTC", "12 s ago")


def test_a_disabled_or_ended_job_says_so_where_its_next_run_would_be() -> None:
    jobs = {
        "off": (_job("off", every="30s", enabled=False), "config"),
        "ended": (_job("ended", every="30s", end="2026-01-01T00:01:00Z"), "config"),
        "ran": (_job("ran", every="30s", start="2026-01-01T00:00:00Z", max_runs=2), "config"),
        "going": (_job("going", every="30s", end="2026-01-02T00:00:00Z"), "config"),
    }
    rows = {row["name"]: row for row in job_rows(jobs, NOW_S, JobFacts())}
    assert {name: (r["next_run"], r["note"]) for name, r in rows.items()} == {
        "off": (None, "disabled"),
        "ended": (None, "ended"),
        "ran": (None, "ended (2 runs)"),
        "going": ("2026-01-01T00:02:30+00:00", None),
    }
    assert [rows[name]["enabled"] for name in ("off", "ended")] == [False, True]
    assert [human_row(rows[name])["left"] for name in ("off", "ended", "ran", "going")] == [
        "disabled", "ended", "ended (2 runs)", "in 30 s",
    ]  # fmt: skip
