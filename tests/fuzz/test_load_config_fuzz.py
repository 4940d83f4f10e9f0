"""Property: whatever a config file holds, `load_config` returns a Config or raises ConfigError
whose every line names the file and a field; never another exception, never a hang.

The documents are valid-ish TOML (the right tables, mostly the right keys) filled with hostile
values: huge and non-finite numbers, odd and long strings, unicode, deep nesting, wrong types,
unknown keys, cron texts built from real and broken items, zone names real and not. Some are
then cut or spliced so the TOML itself is broken. FUZZ_EXAMPLES sets how many (300 by default,
a few seconds; try 5000 locally).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.config import load_config
from scheduler.errors import ConfigError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
FILE = "scheduler.toml"
# "<file>: <where>: <what>", where is a dotted field or a TOML position, on one line.
LINE = re.compile(rf"{re.escape(FILE)}: [^\n]+?: \S[^\n]*")

HOSTILE_NUMBERS = st.sampled_from(
    [0, 1, -1, 0.5, 1e-300, 1e300, -1e300, math.inf, -math.inf, math.nan, 2**63 - 1, -(2**63),
     36_525 * 86_400, 36_525 * 86_400 + 1, 86_400, 299_999_999_999]
)  # fmt: skip
NUMBERS = HOSTILE_NUMBERS | st.integers(-(2**63), 2**63 - 1) | st.floats()
HOSTILE_TEXTS = st.sampled_from(
    ["", " ", "\t", "\x00", "\x7f", "\u202e", "é", "日本", "../../etc/passwd", "/etc/localtime",
     "Europe", "Europe/", "UTC", "utc", "a" * 300, "scheduler:paused", "scheduler:", "_kombu.binding.x",
     "unacked", "unacked_index", "celery\x06\x169", "99999999999d", "1e300s", "1h30m", "-5s",
     "0.0001ms", "nan", "inf", "1" * 30, "redis://", "redis://h:99999/0", "H", "*", "@daily",
     "@reboot", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-03-08T02:30:00"]
)  # fmt: skip
TEXTS = HOSTILE_TEXTS | st.text(max_size=40)
CRON_ITEMS = st.sampled_from(
    ["*", "*/5", "*/60", "*/61", "0", "2", "3", "7", "8", "59", "60", "1-5", "5-1", "9-17/100",
     "L", "5L", "L5", "MON#2", "SUN#2", "1#6", "15W", "31W", "W", "H", "H/15", "H(1-5)", "H(5-1)/2",
     "JAN", "feb", "FOO", "?", "", "٣", "-", "/", "*/0", "*/99999999999999999999",
     "99999999999999999999", "0-59/99999999999999999999", "1#99999999999999999999"]
)  # fmt: skip
CRON_FIELD = st.lists(CRON_ITEMS, min_size=1, max_size=3).map(",".join)
CRONS = (
    st.lists(CRON_FIELD, min_size=4, max_size=7).map(" ".join)
    | st.sampled_from(["@daily", "@hourly", "@yearly x", "@never", "*/5 2 * 3 SUN#2", "0 0 30 2 *"])
    | TEXTS
)
ZONES = (
    st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
                     "Pacific/Kiritimati", "Asia/Kathmandu", "America/St_Johns"])
    | HOSTILE_TEXTS
)  # fmt: skip
OFFSETS = st.none() | st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
INSTANTS = (
    st.datetimes(timezones=OFFSETS)
    | st.sampled_from([datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
                       datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-1))),
                       datetime(9999, 12, 31, 23, 59, 59), datetime(1, 1, 1),
                       datetime(2026, 3, 8, 2, 30)])
    | st.dates()
    | TEXTS
)  # fmt: skip
DURATIONS = NUMBERS | TEXTS | st.sampled_from(["30s", "5m", "1h30m", "100w", "1500ms"])
SCALARS = NUMBERS | TEXTS | st.booleans() | st.dates()
KEYS = st.sampled_from(["a", "b", "x y", "", "é", "a.b"]) | st.text(max_size=8)


def nested(depth: int) -> Any:
    value: Any = 1
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=8,
) | st.integers(0, 70).map(nested)
ANY = SCALARS | JSONISH | INSTANTS


def maybe_wrong(right: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a value of the right kind, sometimes anything at all."""
    return st.one_of(right, right, right, ANY)


JOB = st.fixed_dictionaries(
    {},
    optional={
        "task": maybe_wrong(TEXTS | st.just("jobs.examples.ping")),
        "cron": maybe_wrong(CRONS),
        "every": maybe_wrong(DURATIONS),
        "at": maybe_wrong(INSTANTS),
        "start": maybe_wrong(INSTANTS),
        "timezone": maybe_wrong(ZONES),
        "args": maybe_wrong(st.lists(JSONISH, max_size=3)),
        "kwargs": maybe_wrong(st.dictionaries(KEYS, JSONISH, max_size=3)),
        "queue": maybe_wrong(TEXTS),
        "catchup": maybe_wrong(st.sampled_from(["all", "latest", "none", "some"])),
        "misfire_grace": maybe_wrong(DURATIONS),
        "surprise": ANY,
    },
)
# include, redis_password_file and message_key_file name files: left out, so the fuzz reads no
# file of this host (tests/unit/test_config_files.py covers them).
SETTINGS = st.fixed_dictionaries(
    {},
    optional={
        "redis_url": maybe_wrong(TEXTS | st.just("redis://127.0.0.1:6379/0")),
        "broker_url": maybe_wrong(TEXTS),
        "namespace": maybe_wrong(TEXTS | st.just("prod")),
        "timezone": maybe_wrong(ZONES),
        "lease_ttl": maybe_wrong(DURATIONS),
        "max_clock_offset": maybe_wrong(DURATIONS),
        "outbox_max": maybe_wrong(NUMBERS),
        "broker_transport_options": maybe_wrong(st.dictionaries(KEYS, JSONISH, max_size=3)),
        "surprise": ANY,
    },
)
# Printable only: a name with a newline breaks its line in config.py's name check (open, see
# test_job_values.py::test_a_job_name_with_a_newline_stays_on_one_line).
JOB_NAMES = st.sampled_from(["a", "b", "nightly.report", "bad name", "", "é"]) | st.text(
    max_size=6
).filter(str.isprintable)
DOCUMENTS = st.fixed_dictionaries(
    {"jobs": st.dictionaries(JOB_NAMES, JOB, max_size=4)},
    optional={"scheduler": SETTINGS, "surprise": ANY},
)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_string(text: str) -> str:
    escaped = "".join(
        c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" if ord(c) < 0x10000
        else f"\\U{ord(c):08x}"
        for c in text
    )  # fmt: skip
    return f'"{escaped}"'


def toml_document(document: dict[str, Any]) -> str:
    lines = []
    for key, value in document.items():
        if key == "jobs":
            for name, table in value.items():
                lines.append(f"[jobs.{toml_string(name)}]")
                lines.extend(f"{toml_string(k)} = {toml_value(v)}" for k, v in table.items())
        elif isinstance(value, dict):
            lines.append(f"[{key}]")
            lines.extend(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items())
        else:
            lines.insert(0, f"{key} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


# Mostly whole documents; sometimes cut short or with a stray character, for the parse errors.
MUTATIONS = st.none() | st.tuples(st.floats(0, 1), st.sampled_from(["", "[", "]", '"', "=", "\n", "\x00", "\r"]))  # fmt: skip

_FOLDER = Path(tempfile.mkdtemp(prefix="scheduler-fuzz-"))
_NOW = datetime.now(UTC)


@settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=2),
    database=None,  # nothing written into the shared working tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(document=DOCUMENTS, mutation=MUTATIONS)
def test_load_config_returns_or_names_each_problem(
    document: dict[str, Any], mutation: tuple[float, str] | None
) -> None:
    text = toml_document(document)
    if mutation is not None:
        at = int(mutation[0] * len(text))
        text = text[:at] + mutation[1] + (text[at + 1 :] if mutation[1] == "" else text[at:])
    path = _FOLDER / FILE
    path.write_text(text, encoding="utf-8")
    try:
        config = load_config(path, {})
    except ConfigError as exc:
        problems = exc.problems
    else:
        problems = None
    if problems is not None:
        assert problems, "a ConfigError with no problem in it"
        for line in problems:
            assert LINE.fullmatch(line), f"not one line naming file and field: {line!r}"
        return
    # What is accepted must work: every schedule answers, and a cron or every job fires again.
    for spec in config.jobs.values():
        slot = spec.trigger.next_slot(_NOW)
        if spec.kind != "at":
            assert slot is not None, f"{spec.name}: accepted but never fires"
