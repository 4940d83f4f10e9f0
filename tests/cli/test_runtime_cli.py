"""`jobs add`, `jobs edit`, `jobs remove` against a real Redis: what each prints, what it
stores, and each refusal's one line and exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
import typer
from typer.testing import CliRunner

from scheduler.cli import common, runtime
from scheduler.store.keys import Keys
from tests.clocks import ManualClock
from tests.conftest import RedisServer, free_port
from tests.integration.harness import write_config

KEYS = Keys("rtcli")
# 2026-12-02T08:00:00Z, a Wednesday: 09:00 in Berlin, just past.
NOW_S = 1_796_198_400.0


def make_app() -> typer.Typer:
    app = typer.Typer()
    jobs = typer.Typer()
    app.add_typer(jobs, name="jobs")
    jobs.command("add")(runtime.jobs_add)
    jobs.command("edit")(runtime.jobs_edit)
    jobs.command("remove")(runtime.jobs_remove)
    return app


APP = make_app()


@pytest.fixture
def config(tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(common, "clock", ManualClock(wall_s=NOW_S))
    return write_config(
        tmp_path / "scheduler.toml", redis_url=redis_server.url, namespace="rtcli",
        jobs={"daily": {"task": "t.daily", "cron": "0 9 * * *"}},
    )  # fmt: skip


@pytest.fixture
def client(redis_server: RedisServer) -> redis.Redis:
    return redis_server.client()


def run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(APP, ["jobs", *args, "--config", str(config)])
    return result.exit_code, result.stdout, result.stderr


def stored(client: redis.Redis, name: str) -> Any:
    raw = client.hget(KEYS.runtime_jobs, name)
    return None if raw is None else json.loads(raw)


def version(client: redis.Redis) -> int:
    return int(client.get(KEYS.runtime_version))  # type: ignore[arg-type]


def test_add_prints_the_schedule_and_next_slot_and_stores_the_table(
    config: Path, client: redis.Redis
) -> None:
    assert run(
        config, "add", "report", "--task", "t.report", "--cron", "0 9 * * MON-FRI",
        "--timezone", "Europe/Berlin", "--args", '[1, "a"]', "--kwargs", '{"k": true}',
        "--queue", "reports", "--catchup", "latest", "--misfire-grace", "1m",
        "--overlap", "skip", "--alert-after", "2h",
    ) == (0, "added job report (cron 0 9 * * MON-FRI, next 2026-12-03T09:00:00+01:00)\n", "")  # fmt: skip
    assert stored(client, "report") == {
        "task": "t.report", "cron": "0 9 * * MON-FRI", "timezone": "Europe/Berlin",
        "args": [1, "a"], "kwargs": {"k": True}, "queue": "reports", "catchup": "latest",
        "misfire_grace": "1m", "overlap": "skip", "alert_after": "2h",
    }  # fmt: skip
    assert client.get(KEYS.runtime_version) is not None


def test_in_is_stored_as_an_absolute_instant(config: Path, client: redis.Redis) -> None:
    assert run(config, "add", "later", "--task", "t", "--in", "10m") == (
        0, "added job later (at 2026-12-02T08:10:00+00:00, next 2026-12-02T08:10:00+00:00)\n", "",
    )  # fmt: skip
    assert stored(client, "later") == {"task": "t", "at": "2026-12-02T08:10:00+00:00"}
    assert run(config, "add", "local", "--task", "t", "--at", "2026-12-24T18:00:00",
               "--timezone", "Europe/Berlin")[1] == (
        "added job local (at 2026-12-24T18:00:00+01:00, next 2026-12-24T18:00:00+01:00)\n"
    )  # fmt: skip
    assert stored(client, "local")["at"] == "2026-12-24T18:00:00+01:00"


def test_replace_and_the_refusals_of_add(config: Path, client: redis.Redis) -> None:
    assert run(config, "add", "x", "--task", "t", "--every", "1m")[0] == 0
    assert run(config, "add", "x", "--task", "t", "--every", "2m") == (
        2, "", "scheduler: runtime job 'x' exists: `jobs edit` it, or add it with --replace\n",
    )  # fmt: skip
    assert stored(client, "x")["every"] == "1m"
    assert run(config, "add", "x", "--task", "t", "--every", "2m", "--replace") == (
        0, "replaced job x (every 2m, next 2026-12-02T08:02:00+00:00)\n", "",
    )  # fmt: skip
    assert stored(client, "x") == {"task": "t", "every": "2m"}
    shadow = run(config, "add", "daily", "--task", "t", "--every", "1m")
    assert shadow == (
        2, "", f"scheduler: job 'daily' is defined in {config}: a runtime job may not shadow it\n",
    )  # fmt: skip
    assert stored(client, "daily") is None


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--cron", "0 25 * * *"], "runtime: jobs.x.cron: hour 25 is out of range 0-23"),
        (
            ["--every", "soon"],
            'runtime: jobs.x.every: invalid duration \'soon\': use a number of seconds or units ms, s, m, h, d, w (e.g. "90s", "1h30m")',
        ),
        ([], "runtime: jobs.x: needs exactly one of cron, every, at (found none)"),
        (
            ["--cron", "* * * * *", "--every", "1m"],
            "runtime: jobs.x: needs exactly one of cron, every, at (found cron, every)",
        ),
        (
            ["--cron", "* * * * *", "--catchup", "some"],
            "runtime: jobs.x.catchup: Input should be 'all', 'latest' or 'none', got 'some'",
        ),
        (
            ["--cron", "* * * * *", "--timezone", "Mars/Base"],
            "runtime: jobs.x.timezone: unknown time zone 'Mars/Base' (use a tz database name like \"Europe/Berlin\")",
        ),
        (
            ["--cron", "* * * * *", "--args", "{}"],
            "scheduler: --args: expected a JSON list like '[1, \"a\"]', got '{}'",
        ),
        (
            ["--cron", "* * * * *", "--kwargs", "nope"],
            "scheduler: --kwargs: expected a JSON object like '{\"k\": 1}', got 'nope'",
        ),
        (
            ["--cron", "* * * * *", "--args", "[NaN]"],
            "runtime: jobs.x.args: args[0] is nan, which JSON cannot carry (no nan or inf)",
        ),
        (
            ["--in", "soon"],
            'scheduler: --in: invalid duration \'soon\': use a number of seconds or units ms, s, m, h, d, w (e.g. "90s", "1h30m")',
        ),
        (["--in", "0s"], "scheduler: --in: must be at least 1s, got '0s'"),
        (
            ["--in", "1m", "--at", "2027-01-01T00:00:00Z"],
            "scheduler: --in: give --at or --in, not both",
        ),
        (
            ["--at", "2026-12-01T00:00:00Z"],
            "scheduler: --at: 2026-12-01T00:00:00+00:00 is not in the future: the job would never fire",
        ),
        (
            ["--at", "next tuesday"],
            "runtime: jobs.x.at: expected an ISO 8601 instant like 2026-12-01T09:00:00+01:00, got 'next tuesday'",
        ),
    ],
)
def test_a_bad_option_is_one_line_and_exit_2(
    config: Path, client: redis.Redis, args: list[str], line: str
) -> None:
    assert run(config, "add", "x", "--task", "t", *args) == (2, "", line + "\n")
    assert client.exists(KEYS.runtime_jobs, KEYS.runtime_version) == 0


def test_a_missing_task_is_the_config_s_line(config: Path) -> None:
    assert run(config, "add", "x", "--every", "1m") == (
        2, "", "runtime: jobs.x.task: missing (required)\n",
    )  # fmt: skip


def test_edit_changes_only_the_given_fields(config: Path, client: redis.Redis) -> None:
    run(config, "add", "x", "--task", "t", "--every", "1m", "--start", "2026-01-01T00:00:30Z",
        "--queue", "q")  # fmt: skip
    added = version(client)
    assert stored(client, "x")["start"] == "2026-01-01T00:00:30+00:00"
    assert run(config, "edit", "x", "--queue", "r") == (
        0, "changed job x (every 1m, next 2026-12-02T08:00:30+00:00)\n", "",
    )  # fmt: skip
    assert stored(client, "x") == {
        "task": "t", "every": "1m", "start": "2026-01-01T00:00:30+00:00", "queue": "r",
    }  # fmt: skip
    assert run(config, "edit", "x", "--cron", "*/5 * * * *") == (
        0, "changed job x (cron */5 * * * *, next 2026-12-02T08:05:00+00:00)\n", "",
    )  # fmt: skip
    assert stored(client, "x") == {"task": "t", "queue": "r", "cron": "*/5 * * * *"}
    assert run(config, "edit", "x", "--cron", "0 25 * * *") == (
        2, "", "runtime: jobs.x.cron: hour 25 is out of range 0-23\n",
    )  # fmt: skip
    assert version(client) == added + 2  # the refused edit did not move it


def test_edit_and_remove_refuse_config_jobs_unknown_names_and_garbage(
    config: Path, client: redis.Redis
) -> None:
    for command in (["edit", "daily", "--queue", "q"], ["remove", "daily"]):
        assert run(config, *command) == (
            2, "", f"scheduler: job 'daily' is defined in {config}: edit the file and reload\n",
        )  # fmt: skip
    assert run(config, "edit", "nope", "--queue", "q") == (
        2, "", "scheduler: no runtime job named 'nope'\n",
    )  # fmt: skip
    assert run(config, "remove", "nope") == (2, "", "scheduler: no runtime job named 'nope'\n")
    client.hset(KEYS.runtime_jobs, "junk", "{oops")
    assert run(config, "edit", "junk", "--queue", "q") == (
        2, "", "scheduler: runtime: jobs.junk: '{oops', not a JSON job table: remove it, or add it "
        "again with --replace\n",
    )  # fmt: skip
    run(config, "add", "x", "--task", "t", "--every", "1m")
    assert run(config, "edit", "x") == (
        2, "", "scheduler: jobs edit: give at least one option to change (see --help)\n",
    )  # fmt: skip


def test_remove(config: Path, client: redis.Redis) -> None:
    run(config, "add", "x", "--task", "t", "--every", "1m")
    added = version(client)
    assert run(config, "remove", "x") == (0, "removed job x\n", "")
    assert stored(client, "x") is None
    assert version(client) == added + 1
    assert client.hget(KEYS.watermarks, "x") is not None  # stays, harmless


def test_unreachable_redis_is_exit_1_with_one_line(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    path = write_config(tmp_path / "scheduler.toml", redis_url=url, namespace="rtcli", jobs={})
    for command in (["add", "x", "--task", "t", "--every", "1m"], ["remove", "x"],
                    ["edit", "x", "--queue", "q"]):  # fmt: skip
        code, out, err = run(path, *command)
        assert (code, out) == (1, "")
        assert err.startswith(f"scheduler: cannot reach Redis at {url}: ")
        assert err.count("\n") == 1


def test_a_runtime_hash_of_the_wrong_type_is_exit_1_naming_it(
    config: Path, client: redis.Redis
) -> None:
    client.set(KEYS.runtime_jobs, "garbage")
    assert run(config, "add", "x", "--task", "t", "--every", "1m") == (
        1, "", "scheduler: Redis error: key rtcli:runtime_jobs holds a string, not a hash of "
        "runtime jobs\n",
    )  # fmt: skip


def test_a_huge_json_option_is_one_short_line(config: Path) -> None:
    huge = "[" * 100_000
    result = CliRunner().invoke(
        APP,
        ["jobs", "add", "x", "--task", "t", "--every", "1m", "--kwargs", huge, "-c", str(config)],
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "scheduler: --kwargs: expected a JSON object like '{\"k\": 1}', got "
        "'[[[[[[[[[[[[[[[[[[[[[[[[[[[[[... (100000 characters)\n"
    )
