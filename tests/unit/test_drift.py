"""scheduler/drift.py: comparing two configs' job fingerprints, and rebuilding a JobSpec from a
fingerprint (how `plan` computes the live config's next slots). Pure: no Redis, no files."""

from __future__ import annotations

import json
import zoneinfo
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scheduler.drift import compare, fingerprints, job_table, rebuild_job
from scheduler.jobspec import JobSpec, build_job
from scheduler.views import next_slots

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)


def job(name: str, **table: Any) -> JobSpec:
    problems: list[str] = []
    spec = build_job(Path("t.toml"), name, {"task": "jobs.t", **table}, BERLIN, problems, "ns")
    assert spec is not None, problems
    return spec


def fp(**table: Any) -> dict[str, Any]:
    return job("j", **table).fingerprint()


def test_added_removed_changed_field_by_field_in_the_configs_words() -> None:
    old = {
        "same": fp(cron="0 9 * * *"),
        "gone": fp(every="1m"),
        "moved": fp(cron="0 9 * * *"),
        "zoned": fp(cron="0 9 * * *", misfire_grace="5m"),
        "kind": fp(cron="0 9 * * *"),
    }
    new = {
        "same": fp(cron="0 9 * * *"),
        "moved": fp(cron="0 10 * * *"),
        "zoned": fp(cron="0 9 * * *", timezone="UTC", misfire_grace="1h", overlap="skip"),
        "kind": fp(every="1h"),
        "fresh": fp(at="2026-04-01T00:00:00Z"),
    }
    drift = compare(old, new)
    assert drift.added == ("fresh",)
    assert drift.removed == ("gone",)
    assert [(c.job, [(f.field, f.old, f.new) for f in c.fields]) for c in drift.changed] == [
        ("kind", [("cron", "0 9 * * *", None), ("every", None, "1h"),
                  ("start", None, "1970-01-01T00:00:00+00:00")]),
        ("moved", [("cron", "0 9 * * *", "0 10 * * *")]),
        ("zoned", [("timezone", "Europe/Berlin", "UTC"), ("misfire_grace", "5m", "1h"),
                   ("overlap", "allow", "skip")]),
    ]  # fmt: skip
    assert drift.describe() == (
        "added fresh; removed gone; changed kind (cron, every, start), moved (cron), "
        "zoned (timezone, misfire_grace, overlap)"
    )
    assert drift.describe(": ").startswith("added: fresh; removed: gone; changed: kind")
    assert json.loads(json.dumps(drift.record()))["changed"][1] == {
        "job": "moved", "fields": [{"field": "cron", "old": "0 9 * * *", "new": "0 10 * * *"}],
    }  # fmt: skip


def test_the_same_jobs_are_no_drift_and_a_json_round_trip_changes_nothing() -> None:
    jobs = {"a": job("a", cron="H 9 * * *", kwargs={"x": 1.5}), "b": job("b", every="90s")}
    published = json.loads(json.dumps(fingerprints(jobs)))
    drift = compare(published, fingerprints(jobs))
    assert not drift
    assert drift.describe() == ""


def test_many_jobs_are_named_up_to_a_limit() -> None:
    old = {f"j{i:02}": fp(every="1m") for i in range(25)}
    assert compare(old, {}).describe(shown=3) == "removed j00, j01, j02 and 22 more"
    changed = compare(old, {name: fp(every="2m") for name in old}).describe(shown=2)
    assert changed == "changed j00 (every), j01 (every) and 23 more"


ROUND_TRIP = {
    "cron-H-dst": {"cron": "H 2 * * *", "timezone": "Europe/Berlin"},
    "cron-gap": {"cron": "30 2 * * *"},
    "every": {"every": "90m", "catchup": "latest", "misfire_grace": "30s"},
    "at-local": {"at": "2026-03-29T02:30:00", "queue": "q"},
    "policies": {"cron": "*/5 * * * *", "overlap": "skip", "alert_after": "2h",
                 "alert_task": "jobs.alert", "alert_webhook": "https://example.org/hook",
                 "args": [1, "two", [3]], "kwargs": {"k": {"deep": None}}},
}  # fmt: skip


@pytest.mark.parametrize("table", ROUND_TRIP.values(), ids=list(ROUND_TRIP))
def test_a_fingerprint_rebuilds_the_same_job_with_the_same_slots(table: dict[str, Any]) -> None:
    original = job("rt", **table)
    published = json.loads(json.dumps(original.fingerprint()))
    problems: list[str] = []
    rebuilt = rebuild_job("rt", published, "ns", problems)
    assert problems == []
    assert rebuilt is not None
    assert rebuilt == original  # every compared field (the trigger is not compared)...
    assert rebuilt.fingerprint() == original.fingerprint()
    # ...and the trigger computes the same slots, across the DST change of 2026-03-29.
    assert next_slots(rebuilt, NOW, 5) == next_slots(original, NOW, 5)


def test_the_table_made_from_a_fingerprint_is_what_a_config_would_write() -> None:
    table = job_table(fp(cron="0 9 * * *", misfire_grace="5m", alert_after="1h"))
    assert table == {
        "cron": "0 9 * * *", "task": "jobs.t", "timezone": "Europe/Berlin", "args": [],
        "kwargs": {}, "queue": "celery", "catchup": "all", "misfire_grace": 300.0,
        "overlap": "allow", "alert_after": 3600.0,
    }  # fmt: skip


def test_an_every_jobs_start_survives_the_round_trip() -> None:
    original = job("s", every="1m", start="2026-01-01T00:00:10Z")
    rebuilt = rebuild_job("s", original.fingerprint(), "ns", [])
    assert rebuilt is not None
    assert next_slots(rebuilt, NOW, 1) == next_slots(original, NOW, 1)


GARBAGE = {
    "not-a-mapping": (["cron"], "published config: jobs.g: expected a fingerprint, got list"),
    "no-kind": ({"task": "t"}, "published config: jobs.g: kind None is no schedule"),
    "odd-kind": ({"kind": "weekly", "schedule": "x", "task": "t"},
                 "published config: jobs.g: kind 'weekly' is no schedule"),
    "bad-cron": ({"kind": "cron", "schedule": "61 * * * *", "task": "t"},
                 "published config: jobs.g.cron: minute 61 is out of range 0-59"),
    "bad-zone": ({"kind": "cron", "schedule": "0 * * * *", "task": "t", "timezone": "Mars/X"},
                 "published config: jobs.g.timezone: unknown time zone 'Mars/X' (use a tz "
                 'database name like "Europe/Berlin")'),
    "wrong-type": ({"kind": "every", "schedule": 5, "task": 7},
                   "published config: jobs.g.task: Input should be a valid string"),
    "newer-field": ({"kind": "every", "schedule": "1m", "task": "t", "nice": 3},
                    "published config: jobs.g.nice: unknown key"),
}  # fmt: skip


@pytest.mark.parametrize("case", GARBAGE.values(), ids=list(GARBAGE))
def test_a_garbled_fingerprint_is_one_problem_line_never_a_crash(case: tuple[Any, str]) -> None:
    value, line = case
    problems: list[str] = []
    assert rebuild_job("g", value, "ns", problems) is None
    assert problems[0] == line
