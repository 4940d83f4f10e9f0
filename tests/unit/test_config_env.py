"""`SCHEDULER_<KEY>` overrides are typed like the TOML they stand for, and a bad one is one
line naming the variable."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from scheduler.config import load_config, settings_from_environment
from scheduler.errors import ConfigError
from tests.configs import config_file

MAIN = '[scheduler]\nnamespace = "prod"\n'


def load(tmp_path: Path, env: dict[str, str]):  # type: ignore[no-untyped-def]
    return load_config(config_file(tmp_path, MAIN), env)


def test_an_integer_setting_from_the_environment(tmp_path: Path) -> None:
    assert load(tmp_path, {"SCHEDULER_OUTBOX_MAX": "500"}).scheduler.outbox_max == 500
    assert load(tmp_path, {"SCHEDULER_OUTBOX_MAX": "20_000"}).scheduler.outbox_max == 20_000


def test_a_list_from_the_environment_as_json(tmp_path: Path) -> None:
    (tmp_path / "jobs.d").mkdir()
    config_file(tmp_path, '[jobs.extra]\ntask = "t"\nevery = 5\n', "jobs.d/extra.toml")
    config = load(tmp_path, {"SCHEDULER_INCLUDE": '["jobs.d/*.toml"]'})
    assert config.scheduler.include == ("jobs.d/*.toml",)
    assert list(config.jobs) == ["extra"]


def test_a_table_from_the_environment_as_json(tmp_path: Path) -> None:
    env = {"SCHEDULER_BROKER_TRANSPORT_OPTIONS": '{"global_keyprefix": "x"}'}
    assert load(tmp_path, env).scheduler.broker_transport_options == {"global_keyprefix": "x"}


def test_durations_and_strings_as_they_are(tmp_path: Path) -> None:
    env = {"SCHEDULER_LEASE_TTL": "2s", "SCHEDULER_NAMESPACE": "staging"}
    settings = load(tmp_path, env).scheduler
    assert (settings.lease_ttl, settings.namespace) == (timedelta(seconds=2), "staging")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("SCHEDULER_OUTBOX_MAX", "lots", "SCHEDULER_OUTBOX_MAX: expected an integer, got 'lots'"),
        ("SCHEDULER_OUTBOX_MAX", "1.5", "SCHEDULER_OUTBOX_MAX: expected an integer, got '1.5'"),
        ("SCHEDULER_OUTBOX_MAX", "0", "SCHEDULER_OUTBOX_MAX: Input should be greater than or equal to 1"),
        ("SCHEDULER_INCLUDE", "jobs.d/*.toml", """SCHEDULER_INCLUDE: expected a JSON list like ["jobs.d/*.toml"], got 'jobs.d/*.toml'"""),
        ("SCHEDULER_INCLUDE", '{"a": 1}', """SCHEDULER_INCLUDE: expected a JSON list like ["jobs.d/*.toml"], got '{"a": 1}'"""),
        ("SCHEDULER_INCLUDE", "[1]", "SCHEDULER_INCLUDE: scheduler.include.0: Input should be a valid string"),
        ("SCHEDULER_BROKER_TRANSPORT_OPTIONS", "[1]", """SCHEDULER_BROKER_TRANSPORT_OPTIONS: expected a JSON object like {"global_keyprefix": "x"}, got '[1]'"""),
        ("SCHEDULER_LEASE_TTL", "soon", "SCHEDULER_LEASE_TTL: invalid duration 'soon'"),
        ("SCHEDULER_LEASE_TTL", "100ms", "SCHEDULER_LEASE_TTL: must be at least 300ms, got 100ms"),
        ("SCHEDULER_TIMEZONE", "Mars/Olympus", "SCHEDULER_TIMEZONE: unknown time zone 'Mars/Olympus'"),
        ("SCHEDULER_REDIS_URL", "redis://[::1", "SCHEDULER_REDIS_URL: an IPv6 host is written in brackets: redis://[::1]:6379/0"),
        ("SCHEDULER_BROKER_URL", "redis://h:99999/0", "SCHEDULER_BROKER_URL: port '99999' is not a number 1-65535"),
    ],
)  # fmt: skip
def test_a_bad_override_names_the_variable(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, {name: value})
    [line] = caught.value.problems
    assert line.startswith(expected), line


def test_a_bad_value_in_the_file_still_names_the_file(tmp_path: Path) -> None:
    path = config_file(tmp_path, "[scheduler]\noutbox_max = 0\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {"SCHEDULER_NAMESPACE": "x"})
    assert caught.value.problems == [
        "scheduler.toml: scheduler.outbox_max: Input should be greater than or equal to 1"
    ]


def test_without_a_config_file_the_environment_is_read_the_same_way() -> None:
    env = {
        "SCHEDULER_OUTBOX_MAX": "7",
        "SCHEDULER_REDIS_URL": "redis://h:6379/1",
        "SCHEDULER_REDIS_PASSWORD": "p/w",
    }
    settings = settings_from_environment(env)
    assert settings.outbox_max == 7
    assert settings.redis_url == "redis://:p%2Fw@h:6379/1"
    with pytest.raises(ConfigError) as caught:
        settings_from_environment({"SCHEDULER_OUTBOX_MAX": "lots"})
    assert caught.value.problems == ["SCHEDULER_OUTBOX_MAX: expected an integer, got 'lots'"]
