"""Runtime jobs, pure: validated by the config's own code (the same lines), merged with the
config's jobs under the shadow rule, and built from command-line options."""

from __future__ import annotations

import json
import zoneinfo
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scheduler.config import Config, load_config
from scheduler.errors import ConfigError
from scheduler.runtime import (
    all_jobs,
    decode,
    delayed_at,
    describe,
    edited,
    encode,
    json_option,
    merge,
    normalized,
    running_jobs,
    validate,
)
from tests.integration.harness import write_config

UTC_ZONE = zoneinfo.ZoneInfo("UTC")
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")

# Bad job tables, each written once into a config file and once as a runtime job.
BAD_TABLES: list[dict[str, Any]] = [
    {"task": "t", "cron": "0 25 * * *"},
    {"task": "t", "cron": "61 * * * *"},
    {"task": "t", "every": "0s"},
    {"task": "t", "every": "ten minutes"},
    {"task": "t"},
    {"task": "t", "cron": "* * * * *", "every": "1m"},
    {"cron": "* * * * *"},
    {"task": "t", "cron": "* * * * *", "colour": "red"},
    {"task": "t", "cron": "* * * * *", "catchup": "sometimes"},
    {"task": "t", "cron": "* * * * *", "overlap": "queue"},
    {"task": "t", "cron": "* * * * *", "timezone": "Mars/Olympus"},
    {"task": "t", "cron": "* * * * *", "queue": "ns:outbox"},
    {"task": " ", "cron": "* * * * *"},
    {
        "task": "t",
        "cron": "* * * * *",
        "start": "2026-01-01T00:00:00Z",
        "end": "2025-01-01T00:00:00Z",
    },
    {"task": "t", "every": "1m", "start": "yesterday"},
    {"task": "t", "at": "tomorrow at nine"},
    {"task": "t", "cron": "* * * * *", "misfire_grace": "-5s"},
    {"task": "t", "cron": "* * * * *", "alert_after": "0.5s"},
    {"task": "t", "cron": "* * * * *", "alert_webhook": "ftp://example.com/x"},
    {"task": "t", "cron": "* * * * *", "args": {"not": "a list"}},
    {"task": "t", "cron": "* * * * *", "kwargs": [1, 2]},
]


def config_lines(tmp_path: Path, table: dict[str, Any]) -> list[str]:
    path = write_config(
        tmp_path / "scheduler.toml", redis_url="redis://127.0.0.1:1/0", jobs={"x": table},
        namespace="ns",
    )  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    return caught.value.problems


@pytest.mark.parametrize("table", BAD_TABLES, ids=[json.dumps(t) for t in BAD_TABLES])
def test_a_bad_table_gets_the_config_s_lines_naming_runtime(
    tmp_path: Path, table: dict[str, Any]
) -> None:
    from_config = config_lines(tmp_path, table)
    spec, from_runtime = validate("x", table, UTC_ZONE, "ns")
    assert spec is None
    assert from_config, "the config refuses it too"
    assert all(line.startswith("scheduler.toml: jobs.x") for line in from_config)
    assert from_runtime == [
        line.replace("scheduler.toml: ", "runtime: ", 1) for line in from_config
    ]


def test_an_exact_runtime_line() -> None:
    _, problems = validate("x", {"task": "t", "cron": "0 25 * * *"}, UTC_ZONE, "ns")
    assert problems == ["runtime: jobs.x.cron: hour 25 is out of range 0-23"]


def test_a_bad_name_is_worded_as_the_config_words_it(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.toml"
    path.write_text('[jobs."a b"]\ntask = "t"\ncron = "* * * * *"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    _, problems = validate("a b", {"task": "t", "cron": "* * * * *"}, UTC_ZONE, None)
    assert problems == [caught.value.problems[0].replace("scheduler.toml", "runtime")]
    assert problems == [
        "runtime: jobs.\"a b\": job name may only use letters, digits, '_', '-', '.'"
    ]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = write_config(
        tmp_path / "scheduler.toml", redis_url="redis://127.0.0.1:1/0", namespace="ns",
        jobs={"daily": {"task": "t.daily", "cron": "0 9 * * *"}},
    )  # fmt: skip
    return load_config(path, env={})


def stored(**tables: object) -> dict[str, bytes]:
    return {
        name: table if isinstance(table, bytes) else json.dumps(table).encode()
        for name, table in tables.items()
    }


def test_merge_keeps_valid_jobs_names_shadowed_ones_and_skips_garbage(config: Config) -> None:
    found = merge(
        config,
        stored(
            ping={"task": "t.ping", "every": "1s"},
            daily={"task": "t.other", "every": "1m"},
            junk=b"{not json",
            listed=b"[1, 2]",
            badcron={"task": "t", "cron": "0 25 * * *"},
            huge=b"{" + b" " * 70_000 + b"}",
            deep=b"[" * 5000 + b"]" * 5000,
        ),
    )
    assert sorted(found.jobs) == ["ping"]
    assert found.shadowed == ["daily"]
    assert sorted(found.tables) == ["daily", "ping"]
    assert found.problems == [
        "runtime: jobs.badcron.cron: hour 25 is out of range 0-23",
        "runtime: jobs.deep: '" + "[" * 60 + "'..., not a JSON job table",
        "runtime: jobs.huge: a value of 70002 bytes, not a job table",
        "runtime: jobs.junk: '{not json', not a JSON job table",
        "runtime: jobs.listed: '[1, 2]', not a JSON object (a job table)",
    ]
    running = running_jobs(config, found.jobs)
    assert sorted(running) == ["daily", "ping"]
    assert running["daily"].task == "t.daily"  # the config's job wins
    sources = {name: source for name, (_, source) in all_jobs(config, found.jobs).items()}
    assert sources == {"daily": "config", "ping": "runtime"}


def test_all_jobs_lets_the_config_win_even_if_given_a_shadowed_runtime_job(
    config: Config,
) -> None:
    spec, _ = validate("daily", {"task": "t.other", "every": "1m"}, UTC_ZONE, "ns")
    assert spec is not None
    ((name, (job, source)),) = all_jobs(config, {"daily": spec}).items()
    assert (name, job.task, source) == ("daily", "t.daily", "config")


def test_decode_names_the_job_quoted_as_json() -> None:
    with pytest.raises(ValueError, match=r"^runtime: jobs.a\\nb: 'x', not a JSON job table$"):
        decode("a\nb", b"x")


def test_edit_replaces_the_schedule_and_drops_a_start_only_with_every() -> None:
    every = {"task": "t", "every": "1m", "start": "2026-01-01T00:00:00+00:00", "queue": "q"}
    assert edited(every, {"cron": "* * * * *"}) == {"task": "t", "queue": "q", "cron": "* * * * *"}
    assert edited(every, {"every": "2m"}) == {**every, "every": "2m"}
    assert edited(every, {"queue": "r"}) == {**every, "queue": "r"}


def test_delayed_at_is_a_whole_second_rounded_up() -> None:
    assert delayed_at(100.0, timedelta(seconds=10)) == datetime.fromtimestamp(110, UTC)
    assert delayed_at(100.2, timedelta(minutes=10)) == datetime.fromtimestamp(701, UTC)


def test_a_local_at_is_stored_with_its_zone_s_offset() -> None:
    table = {"task": "t", "at": "2026-12-03T09:00:00", "timezone": "Europe/Berlin"}
    spec, problems = validate("x", table, UTC_ZONE, "ns")
    assert spec is not None, problems
    kept = normalized(table, spec)
    assert kept["at"] == "2026-12-03T09:00:00+01:00"
    again, _ = validate("x", json.loads(encode(kept)), UTC_ZONE, "ns")
    assert again == spec
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert (
        describe(spec, kept, now) == "at 2026-12-03T09:00:00+01:00, next 2026-12-03T09:00:00+01:00"
    )


def test_describe_a_cron_in_its_zone() -> None:
    table = {"task": "t", "cron": "0 9 * * MON-FRI", "timezone": "Europe/Berlin"}
    spec, _ = validate("x", table, UTC_ZONE, "ns")
    assert spec is not None
    now = datetime(2026, 12, 2, 9, 0, tzinfo=BERLIN)  # a Wednesday, at 09:00
    assert describe(spec, table, now) == "cron 0 9 * * MON-FRI, next 2026-12-03T09:00:00+01:00"


@pytest.mark.parametrize(
    ("text", "option", "want", "line"),
    [
        ("{", "--args", list, "--args: expected a JSON list like '[1, \"a\"]', got '{'"),
        (
            '{"a": 1}',
            "--args",
            list,
            "--args: expected a JSON list like '[1, \"a\"]', got '{\"a\": 1}'",
        ),
        ("[1]", "--kwargs", dict, "--kwargs: expected a JSON object like '{\"k\": 1}', got '[1]'"),
    ],
)
def test_json_options_must_be_a_list_or_an_object(
    text: str, option: str, want: type[list[Any]] | type[dict[str, Any]], line: str
) -> None:
    with pytest.raises(ValueError) as caught:
        json_option(text, option, want)
    assert str(caught.value) == line
    assert json_option('[1, "a"]', "--args", list) == [1, "a"]
