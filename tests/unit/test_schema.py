"""`scheduler schema`: the JSON Schema agrees with the config loader on real TOML files.

Each case is one file judged twice, by `load_config` (what the daemon does) and by the schema
(what an editor does), with the draft 4 validator Taplo implements and the draft 7 one the
schema declares. The values TOML writes as date-times reach the schema as strings, as they
reach it in Taplo.
"""

from __future__ import annotations

import json
import re
import tomllib
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from typer.testing import CliRunner

from scheduler.cli import app
from scheduler.config import SchedulerSettings, load_config
from scheduler.durations import parse_duration
from scheduler.errors import ConfigError
from scheduler.jobspec import _JobTable as JobTable
from scheduler.schema import DURATION_PATTERN, config_schema, schema_text
from tests.configs import config_file

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "scheduler.toml"
COMMITTED = ROOT / "config" / "scheduler.schema.json"
VALIDATORS = (jsonschema.Draft4Validator, jsonschema.Draft7Validator)


def as_editor_sees(value: Any) -> Any:
    """A TOML document as JSON: date-times become their RFC 3339 text."""
    if isinstance(value, dict):
        return {key: as_editor_sees(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_editor_sees(item) for item in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


def schema_problems(text: str) -> list[str]:
    """What each validator finds wrong; both must agree."""
    document = as_editor_sees(tomllib.loads(text))
    found = []
    for validator in VALIDATORS:
        errors = sorted(
            "/".join(str(p) for p in e.absolute_path) or "<root>"
            for e in validator(config_schema()).iter_errors(document)
        )
        found.append(errors)
    assert found[0] == found[1], f"draft 4 and draft 7 disagree: {found}"
    return found[0]


def loader_accepts(tmp_path: Path, text: str) -> bool:
    try:
        load_config(config_file(tmp_path, text), env={})
    except ConfigError:
        return False
    return True


JOB = '[jobs.ping]\ntask = "t.ping"\n'
# (what the file shows, its text, whether it is valid): each is loaded and schema-checked.
CASES = [
    ("the example's shape", EXAMPLE.read_text(encoding="utf-8"), True),
    ("no keys at all", "", True),
    ("only jobs, as an included file", JOB + 'every = "5s"\n', True),
    ("a duration as a number", "[scheduler]\nlease_ttl = 2\n" + JOB + "every = 5\n", True),
    ("a duration with blanks and units", '[scheduler]\nlease_ttl = " 1S 500ms "\n', True),
    ("a duration of a fraction", "[scheduler]\nmax_clock_offset = 0.5\n", True),
    ("a duration in made-up units", '[scheduler]\nhistory_ttl = "7 fortnights"\n', False),
    ("a duration as a boolean", "[scheduler]\nlease_ttl = true\n", False),
    ("a negative duration", JOB + 'every = "5s"\nmisfire_grace = -1\n', False),
    ("an unknown [scheduler] key", '[scheduler]\nlease_tll = "2s"\n', False),
    ("an unknown table", '[schedular]\nnamespace = "x"\n', False),
    ("an unknown job key", JOB + 'every = "5s"\nqueues = "a"\n', False),
    ("an integer as text", '[scheduler]\noutbox_max = "10"\n', False),
    ("an integer below its minimum", "[scheduler]\noutbox_max = 0\n", False),
    ("a namespace with a colon", '[scheduler]\nnamespace = "a:b"\n', False),
    ("a task that is a number", '[jobs.ping]\ntask = 5\nevery = "5s"\n', False),
    ("a job without a task", '[jobs.ping]\nevery = "5s"\n', False),
    ("a job without a trigger", JOB, False),
    ("a job with two triggers", JOB + 'every = "5s"\ncron = "* * * * *"\n', False),
    (
        "a job with all three",
        JOB + 'every = 5\ncron = "* * * * *"\nat = 2026-12-01T09:00:00Z\n',
        False,
    ),
    ("a one-off at a TOML date-time", JOB + "at = 2026-12-01T09:00:00+01:00\n", True),
    ("a one-off at a local date-time", JOB + "at = 2026-12-01T09:00:00\n", True),
    ("every with a start", JOB + 'every = "1h"\nstart = 2026-01-01T00:30:00Z\n', True),
    ("cron with a start", JOB + 'cron = "@daily"\nstart = 2026-01-01T00:30:00Z\n', True),
    ("every of a fraction", JOB + "every = 1.5\n", False),
    ("every below a second", JOB + 'every = "500ms"\n', True),  # text: the loader's call
    ("a catchup that is not one", JOB + 'every = "5s"\ncatchup = "sometimes"\n', False),
    ("an overlap that is one", JOB + 'every = "5s"\noverlap = "skip"\n', True),
    ("a job name with a blank", '[jobs."a b"]\ntask = "t"\nevery = 5\n', False),
    ("args that are not a list", JOB + 'every = 5\nargs = "x"\n', False),
]


@pytest.mark.parametrize(("what", "text", "valid"), CASES, ids=[c[0] for c in CASES])
def test_the_schema_and_the_loader_agree(tmp_path: Path, what: str, text: str, valid: bool) -> None:
    if what == "every below a second":
        # A string's value is beyond a pattern: the schema lets it through, the loader
        # says "must be whole seconds, at least 1s". Stated here so the gap stays known.
        assert schema_problems(text) == []
        assert not loader_accepts(tmp_path, text)
        return
    assert loader_accepts(tmp_path, text) is valid
    assert (schema_problems(text) == []) is valid


def test_the_schema_names_where_the_problem_is() -> None:
    text = '[scheduler]\noutbox_max = "ten"\n' + JOB + 'every = "5s"\nqueues = "a"\n'
    assert schema_problems(text) == ["jobs/ping", "scheduler/outbox_max"]


def test_the_schema_is_a_valid_draft_4_and_draft_7_schema() -> None:
    for validator in VALIDATORS:
        validator.check_schema(config_schema())
    assert config_schema()["$schema"] == "http://json-schema.org/draft-07/schema#"


def table(name: str) -> dict[str, Any]:
    properties = config_schema()["properties"]
    if name == "scheduler":
        return dict(properties["scheduler"])
    return dict(properties["jobs"]["patternProperties"]["^[A-Za-z0-9_.-]+$"])


@pytest.mark.parametrize(("name", "model"), [("scheduler", SchedulerSettings), ("job", JobTable)])
def test_every_key_the_model_accepts_is_described(name: str, model: type[Any]) -> None:
    schema = table(name)
    assert list(schema["properties"]) == list(model.model_fields)
    assert schema["additionalProperties"] is False
    assert "``" not in schema["description"]  # the model's docstring is not for editors
    undescribed = [k for k, v in schema["properties"].items() if not v.get("description")]
    assert undescribed == []
    for key, prop in schema["properties"].items():
        assert "title" not in prop, key
        assert "null" not in json.dumps(prop), key  # TOML has no null


def duration_keys() -> list[tuple[str, str]]:
    settings = [
        ("scheduler", key)
        for key, field in SchedulerSettings.model_fields.items()
        if field.annotation is timedelta
    ]
    return [*settings, ("job", "every"), ("job", "misfire_grace"), ("job", "alert_after")]


@pytest.mark.parametrize(("name", "key"), duration_keys())
def test_durations_are_numbers_or_unit_strings(name: str, key: str) -> None:
    prop = table(name)["properties"][key]
    number, text = prop["anyOf"]
    assert number["type"] == "number"
    assert text == {"type": "string", "pattern": DURATION_PATTERN}
    assert prop["examples"] == ["90s", "1h30m", "500ms", "2d"]
    for written in prop["examples"]:
        assert re.search(DURATION_PATTERN, written)
        parse_duration(written)


def test_duration_fields_in_the_settings_are_found() -> None:
    assert ("scheduler", "lease_ttl") in duration_keys()
    assert ("scheduler", "history_ttl") in duration_keys()
    assert ("scheduler", "max_clock_offset") in duration_keys()


def test_defaults_are_written_as_the_config_writes_them() -> None:
    settings = table("scheduler")["properties"]
    assert settings["lease_ttl"]["default"] == "1500ms"
    assert settings["history_ttl"]["default"] == "7d"
    assert settings["timezone"]["default"] == "UTC"
    assert settings["include"]["default"] == []
    defaults = SchedulerSettings()
    for key, prop in settings.items():
        if key in ("lease_ttl", "max_clock_offset", "history_ttl"):
            assert parse_duration(prop["default"]) == getattr(defaults, key)
    job = table("job")["properties"]
    assert job["misfire_grace"]["default"] == "5m"
    assert job["catchup"]["default"] == "all"
    assert "default" not in job["cron"]


# Strings made of the pieces durations are made of, so that many of them read. A blank inside
# a number ("1 0s") is the one thing the loader reads and the pattern does not: left out.
DURATION_PIECES = ["0", "1", "25", ".", ".5", "ms", "Ms", "s", "S", "m", "h", "H", "d", "w"]
DURATION_TEXT = st.lists(st.sampled_from([*DURATION_PIECES, " ", "\t", "x", "-"]), max_size=8).map(
    "".join
)


@given(DURATION_TEXT)
@example("1ms")
@example("1h 30m")
@example("1h\t30m")
@example(" 90 ")
@example("1.5.5s")
@example("")
def test_the_duration_pattern_accepts_what_the_loader_reads(text: str) -> None:
    assume(not re.search(r"[0-9.] +[0-9.]", text.strip()))
    try:
        parse_duration(text)
        reads = True
    except ValueError as exc:
        reads = "longer than" in str(exc)  # a length, not a spelling: beyond a pattern
    assert bool(re.search(DURATION_PATTERN, text)) is reads


def test_the_schema_command_prints_the_schema() -> None:
    result = CliRunner().invoke(app, ["schema"], prog_name="scheduler")
    assert result.exit_code == 0, result.output
    assert result.stdout == schema_text()
    assert json.loads(result.stdout) == config_schema()


def test_the_schema_command_writes_a_file(tmp_path: Path) -> None:
    target = tmp_path / "scheduler.schema.json"
    result = CliRunner().invoke(app, ["schema", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == schema_text()
    assert result.stdout == ""
    assert result.stderr == f"{target}: schema written ({len(schema_text())} bytes)\n"


def test_the_schema_command_says_when_it_cannot_write(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "scheduler.schema.json"
    result = CliRunner().invoke(app, ["schema", "-o", str(target)])
    assert result.exit_code == 1
    assert result.stderr == (
        f"scheduler: cannot write the schema to {target}: No such file or directory\n"
    )


def test_the_committed_schema_is_current() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == schema_text(), (
        "config/scheduler.schema.json is stale: run "
        "`scheduler schema --output config/scheduler.schema.json`"
    )
