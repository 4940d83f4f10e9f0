"""`status`, `jobs list` and `jobs missed` against every kind of garbage at every key they read.

Each case writes one wrong value into a real redis-server next to good ones, then runs the three
commands (table and --json). Wanted every time: the normal exit code, strict JSON (no NaN or
Infinity), the good values still shown, and the wrong one reported as `unreadable: <key> ...`,
naming the key, in both the table and the JSON of the command that reads it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from scheduler import cli
from scheduler.cli import common
from tests.clocks import ManualClock
from tests.configs import config_file
from tests.conftest import RedisServer

NS = "g"
STATUS, LIST, MISSED = "status", "jobs list", "jobs missed"
COMMANDS = {STATUS: ["status"], LIST: ["jobs", "list"], MISSED: ["jobs", "missed"]}
GOOD_SLOT = 1_767_225_600  # 2026-01-01T00:00:00Z
BAD_ID = "99999999999999-1"  # a stream id after the good entry's


@dataclass(frozen=True)
class Case:
    name: str
    write: Callable[[redis.Redis], Any]
    commands: tuple[str, ...]  # the commands that read the key
    marker: str | None  # the expected "unreadable:" text; None: nothing to report
    keeps_good: bool = True  # the good values at the same key are still shown


def _hset(key: str, field: bytes | str, value: bytes | str) -> Callable[[redis.Redis], Any]:
    return lambda r: r.hset(f"{NS}:{key}", field, value)


def _set(key: str, value: bytes | str) -> Callable[[redis.Redis], Any]:
    return lambda r: r.set(f"{NS}:{key}", value)


def _node(value: str) -> Callable[[redis.Redis], Any]:
    return _hset("nodes", "bad", value)


def _entry(**fields: bytes | str) -> Callable[[redis.Redis], Any]:
    return lambda r: r.xadd(f"{NS}:missed", fields, id=BAD_ID)  # type: ignore[arg-type]


def _wrong_type(key: str, kind: str) -> Callable[[redis.Redis], Any]:
    """Replace `key` by a value of another type."""

    def write(r: redis.Redis) -> None:
        full = f"{NS}:{key}"
        r.delete(full)
        if kind == "string":
            r.set(full, "x")
        elif kind == "hash":
            r.hset(full, "x", "y")
        elif kind == "list":
            r.rpush(full, "x")
        elif kind == "set":
            r.sadd(full, "x")
        else:
            r.xadd(full, {"x": "y"})

    return write


def _odd_node(r: redis.Redis) -> None:
    """A fresh heartbeat whose other fields are non-finite: shown, in strict JSON."""
    now_s = r.time()[0]
    r.hset(f"{NS}:nodes", "odd", f'{{"seen_at": {now_s}, "clock_offset_ms": NaN, '
           '"pid": 1e999, "host": -Infinity}')  # fmt: skip


def _escapes_node(r: redis.Redis) -> None:
    """A fresh heartbeat with a terminal escape and a lone surrogate: shown, harmless."""
    now_s = r.time()[0]
    r.hset(f"{NS}:nodes", "odd", f'{{"seen_at": {now_s}, "host": "\\u001b[2J\\ud800"}}')


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


M = f"unreadable: {NS}"
# fmt: off
CASES = [
    # -- wrong type at every key the three commands read ----------------------------------
    Case("nodes-string", _wrong_type("nodes", "string"), (STATUS,),
         f"{M}:nodes holds a string, not a hash", keeps_good=False),
    Case("nodes-stream", _wrong_type("nodes", "stream"), (STATUS,),
         f"{M}:nodes holds a stream, not a hash", keeps_good=False),
    Case("state_lost-hash", _wrong_type("state_lost", "hash"), (STATUS,),
         f"{M}:state_lost holds a hash, not a string"),
    Case("quarantine-list", _wrong_type("quarantine", "list"), (STATUS, LIST),
         f"{M}:quarantine holds a list, not a hash"),
    Case("quarantine-set/list", _wrong_type("quarantine", "set"), (STATUS, LIST),
         f"{M}:quarantine holds a set, not a hash"),
    Case("outbox-hash", _wrong_type("outbox", "hash"), (STATUS,),
         f"{M}:outbox holds a hash, not a list"),
    Case("last_fire-string", _wrong_type("last_fire", "string"), (LIST,),
         f"{M}:last_fire holds a string, not a hash", keeps_good=False),
    Case("outcomes-list", _wrong_type("outcomes", "list"), (LIST,),
         f"{M}:outcomes holds a list, not a hash", keeps_good=False),
    Case("paused-hash", _wrong_type("paused", "hash"), (LIST,),
         f"{M}:paused holds a hash, not a set"),
    Case("missed-hash", _wrong_type("missed", "hash"), (LIST, MISSED),
         f"{M}:missed holds a hash, not a stream", keeps_good=False),
    Case("missed_open-string", _wrong_type("missed_open", "string"), (LIST, MISSED),
         f"{M}:missed_open holds a string, not a hash"),
    Case("lease-hash", _wrong_type("lease", "hash"), (STATUS,), None),
    # -- bytes that are not UTF-8, in field names and in values ---------------------------
    Case("nodes-name-bytes", _hset("nodes", b"\xff\xfe", "{}"), (STATUS,),
         f"{M}:nodes field \\xff\\xfe holds a heartbeat with seen_at 'null', not a time"),
    Case("nodes-value-bytes", _node(b"\xff\xfe\x00"), (STATUS,),  # type: ignore[arg-type]
         f"{M}:nodes field bad holds '\\xff\\xfe\\x00', not JSON"),
    Case("state_lost-bytes", _set("state_lost", b"\xc3\x28"), (STATUS,),
         f"{M}:state_lost holds '\\xc3(', not JSON"),
    Case("quarantine-value-bytes", _hset("quarantine", "a", b"\x80"), (STATUS, LIST),
         f"{M}:quarantine field a holds '\\x80', not JSON"),
    Case("quarantine-name-bytes", _hset("quarantine", b"\x80", b"\x80"), (STATUS,),
         f"{M}:quarantine field \\x80 holds '\\x80', not JSON"),
    Case("last_fire-name-bytes", _hset("last_fire", b"\xff", "1 2"), (LIST,), None),
    Case("last_fire-value-bytes", _hset("last_fire", "a", b"\xff 5"), (LIST,),
         f"{M}:last_fire field a holds '\\xff 5', not \"<slot> <token>\""),
    Case("outcomes-value-bytes", _hset("outcomes", "a", b"{\"outcome\": \"\xff\"}"), (LIST,),
         f"{M}:outcomes field a holds '{{\"outcome\": \"\\xff\"}}', not JSON"),
    Case("paused-member-bytes", lambda r: r.sadd(f"{NS}:paused", b"\xff"), (LIST,), None),
    Case("missed-entry-bytes", _entry(job=b"\xff", first=b"\xff", last="1", count="1"), (MISSED,),
         f"{M}:missed field {BAD_ID} holds a missed range with first '\\xff'"),
    Case("missed_open-name-bytes", _hset("missed_open", b"\xfe", b"\xff 1 1 x"), (MISSED,),
         f"{M}:missed_open field \\xfe holds '\\xff 1 1 x', not \"<first> <last> <count> <reason>\""),
    # -- huge numbers ----------------------------------------------------------------------
    Case("nodes-seen_at-huge-int", _node('{"seen_at": 1' + "0" * 30 + "}"), (STATUS,),
         f"{M}:nodes field bad holds a heartbeat with seen_at '1{'0' * 30}', not a time"),
    Case("nodes-seen_at-too-many-digits", _node('{"seen_at": 1' + "0" * 5000 + "}"), (STATUS,),
         f"{M}:nodes field bad holds '{{\"seen_at\": 1{'0' * 47}'..., not JSON"),
    Case("last_fire-overflow", _hset("last_fire", "a", "99999999999999 5"), (LIST,),
         f"{M}:last_fire field a holds '99999999999999 5', not \"<slot> <token>\""),
    Case("last_fire-huge", _hset("last_fire", "a", "9" * 400 + " 5"), (LIST,),
         f"{M}:last_fire field a holds '{'9' * 60}'..., not \"<slot> <token>\""),
    Case("missed-huge", _entry(job="a", first="1" + "0" * 30, last="1", count="1"), (MISSED,),
         f"{M}:missed field {BAD_ID} holds a missed range with first '1{'0' * 30}'"),
    Case("missed_open-huge", _hset("missed_open", "a", "1 99999999999999 1 x"), (LIST, MISSED),
         f"{M}:missed_open field a holds '1 99999999999999 1 x', not \"<first> <last> "
         "<count> <reason>\""),
    # readable records with huge numbers in fields nobody computes with: shown, JSON-safe
    Case("state_lost-huge", _set("state_lost", '{"noticed_at": 1' + "0" * 100 + "}"),
         (STATUS,), None),
    Case("quarantine-since-huge", _hset("quarantine", "a", '{"key": "k", "found": "f", '
         '"since": 1' + "0" * 300 + "}"), (LIST,), None),
    # -- 1e999, -inf, nan ------------------------------------------------------------------
    Case("nodes-seen_at-1e999", _node('{"seen_at": 1e999}'), (STATUS,),
         f"{M}:nodes field bad holds a heartbeat with seen_at 'Infinity', not a time"),
    Case("nodes-seen_at--inf", _node('{"seen_at": -Infinity}'), (STATUS,),
         f"{M}:nodes field bad holds a heartbeat with seen_at '-Infinity', not a time"),
    Case("nodes-seen_at-nan", _node('{"seen_at": NaN}'), (STATUS,),
         f"{M}:nodes field bad holds a heartbeat with seen_at 'NaN', not a time"),
    Case("nodes-escapes", _escapes_node, (STATUS,), None),
    Case("nodes-other-field-nan", _odd_node, (STATUS,), None),
    Case("state_lost-nan", _set("state_lost", '{"noticed_at": NaN}'), (STATUS,), None),
    Case("outcomes-inf", _hset("outcomes", "a", '{"outcome": "failed", "at": 1e999, '
         '"detail": NaN}'), (LIST,), None),
    Case("last_fire-inf", _hset("last_fire", "a", "inf 5"), (LIST,),
         f"{M}:last_fire field a holds 'inf 5', not \"<slot> <token>\""),
    Case("missed-nan", _entry(job="a", first="nan", last="1", count="-inf"), (MISSED,),
         f"{M}:missed field {BAD_ID} holds a missed range with first 'nan', count '-inf'"),
    # -- empty strings ---------------------------------------------------------------------
    Case("nodes-empty", _hset("nodes", "", ""), (STATUS,),
         f"{M}:nodes field  holds '', not JSON"),
    Case("state_lost-empty", _set("state_lost", ""), (STATUS,),
         f"{M}:state_lost holds '', not JSON"),
    Case("quarantine-empty", _hset("quarantine", "a", ""), (STATUS, LIST),
         f"{M}:quarantine field a holds '', not JSON"),
    Case("last_fire-empty", _hset("last_fire", "a", ""), (LIST,),
         f"{M}:last_fire field a holds '', not \"<slot> <token>\""),
    Case("outcomes-empty", _hset("outcomes", "a", ""), (LIST,),
         f"{M}:outcomes field a holds '', not JSON"),
    Case("paused-empty", lambda r: r.sadd(f"{NS}:paused", ""), (LIST,), None),
    Case("missed-empty", _entry(job="", first="", last="", count=""), (MISSED,),
         f"{M}:missed field {BAD_ID} holds a missed range with job '', first '', last '', count ''"),
    Case("missed_open-empty", _hset("missed_open", "a", ""), (LIST, MISSED),
         f"{M}:missed_open field a holds '', not \"<first> <last> <count> <reason>\""),
    # -- JSON of the wrong shape -----------------------------------------------------------
    Case("nodes-list", _node("[1, 2]"), (STATUS,), f"{M}:nodes field bad holds '[1, 2]', not a heartbeat"),
    Case("nodes-seen_at-string", _node('{"seen_at": "yesterday"}'), (STATUS,),
         f"{M}:nodes field bad holds a heartbeat with seen_at '\"yesterday\"', not a time"),
    Case("nodes-seen_at-null", _node('{"seen_at": null}'), (STATUS,),
         f"{M}:nodes field bad holds a heartbeat with seen_at 'null', not a time"),
    Case("nodes-seen_at-list", _node('{"seen_at": [1]}'), (STATUS,),
         f"{M}:nodes field bad holds a heartbeat with seen_at '[1]', not a time"),
    Case("nodes-seen_at-bool", _node('{"seen_at": true}'), (STATUS,),
         f"{M}:nodes field bad holds a heartbeat with seen_at 'true', not a time"),
    Case("nodes-nested", _node(_nested(100_000)), (STATUS,),
         f"{M}:nodes field bad holds a value of 200000 bytes"),
    Case("nodes-nested-small", _node(_nested(20_000)), (STATUS,),
         f"{M}:nodes field bad holds JSON nested too deep"),
    Case("state_lost-list", _set("state_lost", "[1]"), (STATUS,),
         f"{M}:state_lost holds '[1]', not a state-lost report"),
    Case("quarantine-string", _hset("quarantine", "a", '"x"'), (STATUS, LIST),
         f"{M}:quarantine field a holds '\"x\"', not a quarantine record"),
    Case("quarantine-key-number", _hset("quarantine", "a", '{"key": 1, "found": "x"}'), (STATUS, LIST),
         f"{M}:quarantine field a holds '{{\"key\": 1, \"found\": \"x\"}}', not a quarantine record"),
    Case("outcomes-list-json", _hset("outcomes", "a", "[]"), (LIST,),
         f"{M}:outcomes field a holds '[]', not an outcome record"),
    Case("outcomes-number", _hset("outcomes", "a", '{"outcome": 5}'), (LIST,),
         f"{M}:outcomes field a holds an outcome of '5', not a name"),
    Case("missed_open-short", _hset("missed_open", "a", "1 2 3"), (LIST, MISSED),
         f"{M}:missed_open field a holds '1 2 3', not \"<first> <last> <count> <reason>\""),
    Case("missed-no-job", _entry(first="1", last="1", count="1"), (MISSED,),
         f"{M}:missed field {BAD_ID} holds a missed range with job ''"),
]
# fmt: on


def _strict(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def _markers(command: str, data: Any) -> list[str]:
    """The JSON's unreadable records, in the table's words."""
    if command == STATUS:
        found = data["unreadable"]
    else:
        found = [problem for record in data for problem in record["unreadable"]]
    # A key's problem lands on every row of `jobs list`: the table says it once.
    return list(dict.fromkeys(
        f"unreadable: {p['key']}" + (f" field {p['field']}" if "field" in p else "")
        + f" holds {p['found']}"
        for p in found
    ))  # fmt: skip


def _good(r: redis.Redis) -> None:
    now_s = r.time()[0]
    r.hset(f"{NS}:nodes", "good", json.dumps({"node_id": "good", "host": "h", "seen_at": now_s}))
    r.hset(f"{NS}:last_fire", "b", f"{GOOD_SLOT} 7")
    r.hset(f"{NS}:outcomes", "b", json.dumps({"outcome": "succeeded"}))
    r.xadd(f"{NS}:missed", {"job": "b", "first": "1", "last": "2", "count": "2", "reason": "r"})


def _kept(command: str, data: Any) -> bool:
    if command == STATUS:
        return [n.get("node_id") for n in data["nodes"]][:1] == ["good"]
    if command == LIST:
        rows = {row["name"]: row for row in data}
        return rows["b"]["last_run"] == "2026-01-01T00:00:00Z" and (
            rows["b"]["outcome"] == "succeeded"
        )
    return any(record.get("job") == "b" for record in data)


@pytest.fixture
def config(tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(common, "clock", ManualClock(wall_s=GOOD_SLOT + 60.0))
    return config_file(
        tmp_path,
        f'[scheduler]\nredis_url = "{redis_server.url}"\nnamespace = "{NS}"\n'
        f'broker_url = "redis://127.0.0.1:1/0"\n\n'
        '[jobs.a]\ntask = "jobs.examples.ping"\nevery = "90s"\n\n'
        '[jobs.b]\ntask = "jobs.examples.ping"\nevery = "90s"\n',
    )


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_garbage_is_reported_naming_its_key(
    case: Case, config: Path, redis_server: RedisServer
) -> None:
    r = redis_server.client()
    _good(r)
    case.write(r)
    runner = CliRunner()
    for command, argv in COMMANDS.items():
        as_json = runner.invoke(cli.app, [*argv, "--json", "-c", str(config)])
        # No node leads in this test: status says so with exit code 3.
        assert as_json.exit_code == (3 if command == STATUS else 0), as_json.output
        data = _strict(as_json.stdout)
        shown = runner.invoke(cli.app, [*argv, "-c", str(config)])
        assert shown.exit_code == (3 if command == STATUS else 0), shown.output
        lines = shown.stdout.splitlines()
        reported = _markers(command, data)
        assert [line for line in lines if line.startswith("unreadable:")] == reported
        if command in case.commands and case.marker is not None:
            assert case.marker in reported, (command, reported)
        else:
            assert all(f"{NS}:{_key_of(case)} " not in line for line in reported), reported
        if case.keeps_good or command not in case.commands:
            assert _kept(command, data), (command, data)
        assert "\x1b" not in shown.stdout


def _key_of(case: Case) -> str:
    return case.name.split("-", 1)[0]
