"""`trigger`, `backfill`, `pause` and `resume` against a real redis-server, which is also the
broker: the messages are read back from the queue's list and checked header by header."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import redis
import typer
from typer.testing import CliRunner

from scheduler.cli import app as full_app
from scheduler.cli import common, control
from scheduler.signing import Signer, canonical_body
from scheduler.store.keys import Keys
from scheduler.store.pauses import read_pause_info
from scheduler.store.state import StateStore
from scheduler.wire import manual_task_id, slot_text, task_id, task_id_of_text
from tests.clocks import ManualClock
from tests.conftest import RedisServer, free_port
from tests.integration.harness import write_config
from tests.node.conftest import rig_factory  # noqa: F401  (a fixture, used by name)

NS = "ctl"
QUEUE = "parked"
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, a slot of every job below
NOW = T0 + 3600.5  # the CLI's "now": 2026-01-01T01:00:00.5Z
MINUTELY = {"task": "jobs.examples.hello", "args": ["ops"], "every": "1m",
            "start": "2026-01-01T00:00:00Z", "queue": QUEUE}  # fmt: skip

app = typer.Typer()  # the commands under test, apart from the others' registration
app.command("trigger")(control.trigger)
app.command("backfill")(control.backfill)
app.command("pause")(control.pause)
app.command("resume")(control.resume)
jobs_app = typer.Typer()
jobs_app.command("pause")(control.pause)
jobs_app.command("resume")(control.resume)
app.add_typer(jobs_app, name="jobs")


def configure(
    tmp_path: Path, url: str, jobs: dict[str, dict[str, object]] | None = None, **extra: object
) -> Path:
    return write_config(tmp_path / "scheduler.toml", redis_url=url, namespace=NS,
                        jobs=jobs or {"tick": MINUTELY}, extra_settings=extra)  # fmt: skip


@pytest.fixture
def run(tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(common, "clock", ManualClock(wall_s=NOW))
    path = configure(tmp_path, redis_server.url)

    def invoke(*args: str, stdin: str | None = None, config: Path | None = None) -> Any:
        result = CliRunner().invoke(app, [*args, "--config", str(config or path)], input=stdin)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    return invoke


def sent(client: redis.Redis, queue: str = QUEUE) -> list[dict[str, Any]]:
    """The messages in `queue`, oldest first, with the body decoded as `args`/`kwargs`."""
    messages = []
    for raw in reversed(client.lrange(queue, 0, -1)):  # type: ignore[arg-type]
        message = json.loads(raw)
        body = json.loads(base64.b64decode(message["body"]))
        messages.append({**message["headers"], "args": body[0], "kwargs": body[1]})
    return messages


def history(client: redis.Redis) -> list[dict[str, str]]:
    return [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in client.xrange(f"{NS}:history")  # type: ignore[union-attr]
    ]


# -- trigger -------------------------------------------------------------------------------


def test_trigger_sends_a_manual_fire_under_its_own_id(run: Any, redis_server: RedisServer) -> None:
    client = redis_server.client()
    first = run("trigger", "tick")
    second = run("trigger", "tick")
    now_slot = "2026-01-01T01:00:00Z"
    ids = [manual_task_id(NS, "tick", now_slot, n) for n in (1, 2)]
    assert (first.exit_code, first.stdout, first.stderr) == (
        0, f"triggered job tick: task {ids[0]} (slot {now_slot})\n", "",
    )  # fmt: skip
    assert second.stdout == f"triggered job tick: task {ids[1]} (slot {now_slot})\n"
    messages = sent(client)
    assert [m["id"] for m in messages] == ids
    scheduled = task_id(NS, "tick", T0 + 3600)
    assert scheduled not in ids
    assert ids[0] != ids[1]
    for message in messages:
        assert message["task"] == "jobs.examples.hello"
        assert (message["scheduler_job"], message["scheduler_slot"]) == ("tick", now_slot)
        assert (message["scheduler_token"], message["scheduler_kind"]) == ("0", "manual")
        assert (message["args"], message["kwargs"]) == (["ops"], {})
        assert "scheduler_signature" not in message
    assert history(client) == [
        {"job": "tick", "slot": str(T0 + 3600), "token": "", "kind": "manual", "task_id": ident}
        for ident in ids
    ]


def test_trigger_at_a_given_slot_in_the_jobs_zone_and_json(
    run: Any, redis_server: RedisServer
) -> None:
    done = run("trigger", "tick", "--slot", "2026-01-01T00:30:15.9", "--json")
    ident = manual_task_id(NS, "tick", "2026-01-01T00:30:15Z", 1)
    assert json.loads(done.stdout) == {
        "job": "tick", "slot": "2026-01-01T00:30:15Z", "task_id": ident, "kind": "manual",
    }  # fmt: skip
    assert [m["id"] for m in sent(redis_server.client())] == [ident]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["trigger", "nope"], "no job named 'nope' in {path} nor among the runtime jobs"),
        (["trigger", "tick", "--slot", "soon"], "--slot: expected an ISO 8601 instant, got 'soon'"),
        (["trigger", "tick", "--slot", "1969-12-31T23:59:59Z"],
         "--slot: expected an instant from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z"),
    ],
)  # fmt: skip
def test_trigger_refusals(
    run: Any, redis_server: RedisServer, tmp_path: Path, args: list[str], line: str
) -> None:
    done = run(*args)
    path = tmp_path / "scheduler.toml"
    assert (done.exit_code, done.stdout, done.stderr) == (
        2,
        "",
        f"scheduler: {line.format(path=path)}\n",
    )
    assert redis_server.client().llen(QUEUE) == 0


def test_trigger_respects_overlap_skip_unless_forced(
    tmp_path: Path, redis_server: RedisServer, run: Any
) -> None:
    path = configure(tmp_path, redis_server.url, {"tick": {**MINUTELY, "overlap": "skip"}})
    client = redis_server.client()
    running = task_id(NS, "tick", T0)
    client.hset(
        f"{NS}:outcomes",
        "tick",
        json.dumps(
            {"slot": "2026-01-01T00:00:00Z", "task_id": running, "outcome": "started", "at": NOW}
        ),
    )
    client.set(f"{NS}:run:{running}", "started worker-1")
    refused = run("trigger", "tick", config=path)
    assert (refused.exit_code, refused.stdout, refused.stderr) == (1, "", (
        f'scheduler: job tick is still running (task {running}) and its overlap is "skip": not '
        "triggered (--force sends it anyway)\n"))  # fmt: skip
    assert client.llen(QUEUE) == 0
    assert not history(client)
    forced = run("trigger", "tick", "--force", config=path)
    assert forced.exit_code == 0, forced.output
    assert [m["scheduler_kind"] for m in sent(client)] == ["manual"]
    # The run ended: no --force needed.
    client.set(f"{NS}:run:{running}", "done worker-1")
    assert run("trigger", "tick", config=path).exit_code == 0
    assert len(sent(client)) == 2


def test_trigger_signs_with_the_message_key(
    tmp_path: Path, redis_server: RedisServer, run: Any
) -> None:
    key = b"k" * 32
    (tmp_path / "message.key").write_bytes(key)
    path = configure(tmp_path, redis_server.url, message_key_file=str(tmp_path / "message.key"))
    assert run("trigger", "tick", config=path).exit_code == 0
    (message,) = sent(redis_server.client())
    body = canonical_body(message["args"], message["kwargs"])
    assert Signer(key).verify(message["scheduler_signature"], "jobs.examples.hello", body,
                              "tick", message["scheduler_slot"], message["id"]) is None  # fmt: skip


def test_unreachable_redis_is_one_line_and_exit_1(tmp_path: Path, run: Any) -> None:
    port = free_port()
    path = configure(tmp_path, f"redis://127.0.0.1:{port}/0")
    for args in (["trigger", "tick"], ["pause", "tick"], ["resume", "tick"],
                 ["backfill", "tick", "--from", "2026-01-01T00:00:00Z", "--to", "2026-01-01T00:01:00Z"]):  # fmt: skip
        done = run(*args, config=path)
        assert done.exit_code == 1, args
        assert done.stderr.startswith(
            f"scheduler: cannot reach Redis at redis://127.0.0.1:{port}/0: "
        )
        assert done.stderr.count("\n") == 1
        assert done.stdout == ""


# -- backfill ------------------------------------------------------------------------------

FROM, TO = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"  # six slots, T0 .. T0 + 300


def test_backfill_sends_each_slot_under_its_own_id_and_skips_fired_ones(
    run: Any, redis_server: RedisServer
) -> None:
    client = redis_server.client()
    # T0 + 60 fired by the schedule (as the claim writes it), T0 + 120 ran (a run claim).
    client.xadd(f"{NS}:history", {"job": "tick", "slot": str(T0 + 60), "token": "7"})
    client.xadd(f"{NS}:history", {"job": "other", "slot": str(T0 + 180), "token": "7"})
    client.xadd(f"{NS}:history", {"job": "tick", "slot": str(T0 + 240), "token": "",
                                  "kind": "manual", "task_id": "x"})  # fmt: skip
    client.set(f"{NS}:run:{task_id(NS, 'tick', T0 + 120)}", "done w")
    done = run("backfill", "tick", "--from", FROM, "--to", TO)
    assert (done.exit_code, done.stderr) == (0, "")
    assert done.stdout == (
        "backfilled job tick: sent 4 (2026-01-01T00:00:00Z .. 2026-01-01T00:05:00Z), skipped 2 "
        "already fired, of 6 slots in [2026-01-01T00:00:00+00:00, 2026-01-01T00:05:00+00:00]\n"
    )
    wanted = [T0, T0 + 180, T0 + 240, T0 + 300]  # a manual fire does not count as the slot's
    messages = sent(client)
    assert [m["id"] for m in messages] == [task_id(NS, "tick", s) for s in wanted]
    assert {(m["scheduler_kind"], m["scheduler_token"]) for m in messages} == {("backfill", "0")}
    assert [m["scheduler_slot"] for m in messages] == [slot_text(s) for s in wanted]
    assert history(client)[3:] == [
        {"job": "tick", "slot": str(s), "token": "", "kind": "backfill",
         "task_id": task_id(NS, "tick", s)} for s in wanted
    ]  # fmt: skip
    # Again: every slot was fired now, nothing is repeated.
    again = run("backfill", "tick", "--from", FROM, "--to", TO)
    assert again.stdout.startswith("backfilled job tick: sent 0, skipped 6 already fired")
    assert len(sent(client)) == 4


def test_backfill_dry_run_lists_the_plan_and_sends_nothing(
    run: Any, redis_server: RedisServer
) -> None:
    client = redis_server.client()
    client.xadd(f"{NS}:history", {"job": "tick", "slot": str(T0 + 60), "token": "7"})
    done = run("backfill", "tick", "--from", FROM, "--to", "2026-01-01T00:02:00Z", "--dry-run")
    ids = [task_id(NS, "tick", T0 + n) for n in (0, 60, 120)]
    assert done.exit_code == 0
    assert done.stdout.splitlines() == [
        "backfill job tick: 3 slots in [2026-01-01T00:00:00+00:00, 2026-01-01T00:02:00+00:00]: "
        "would send 2, skip 1",
        "SLOT                  TASK ID                               ACTION  REASON",
        f"2026-01-01T00:00:00Z  {ids[0]}  send    -",
        f"2026-01-01T00:01:00Z  {ids[1]}  skip    already fired (history)",
        f"2026-01-01T00:02:00Z  {ids[2]}  send    -",
    ]
    as_json = json.loads(run("backfill", "tick", "--from", FROM, "--to", "2026-01-01T00:02:00Z",
                             "--dry-run", "--json").stdout)  # fmt: skip
    assert as_json == {
        "job": "tick", "kind": "backfill", "from": "2026-01-01T00:00:00+00:00",
        "to": "2026-01-01T00:02:00+00:00", "dry_run": True, "send": 2, "skipped": 1,
        "slots": [
            {"job": "tick", "slot": "2026-01-01T00:00:00Z", "task_id": ids[0], "action": "send", "reason": None},
            {"job": "tick", "slot": "2026-01-01T00:01:00Z", "task_id": ids[1], "action": "skip", "reason": "already fired (history)"},
            {"job": "tick", "slot": "2026-01-01T00:02:00Z", "task_id": ids[2], "action": "send", "reason": None},
        ],
    }  # fmt: skip
    assert client.llen(QUEUE) == 0
    assert len(history(client)) == 1


def test_backfill_skips_a_run_known_only_from_its_worker_reports(
    run: Any, redis_server: RedisServer
) -> None:
    """The shared history stream has forgotten T0 + 60, its run claim has expired; the job's
    own reports still say a worker ran it."""
    client = redis_server.client()
    ran = task_id(NS, "tick", T0 + 60)
    client.xadd(f"{NS}:reports:tick", {"event": "succeeded", "slot": slot_text(T0 + 60),
                                       "task_id": ran, "kind": "scheduled"})  # fmt: skip
    done = run("backfill", "tick", "--from", FROM, "--to", "2026-01-01T00:02:00Z", "--dry-run")
    assert done.stdout.splitlines()[3] == (
        f"2026-01-01T00:01:00Z  {ran}  skip    already ran (worker reports)"
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--from", FROM, "--to", "2026-01-01T01:00:01Z"],
         "--to 2026-01-01T01:00:01+00:00 is later than now (2026-01-01T01:00:00Z): backfill "
         "covers past slots; the scheduler fires the rest"),
        (["--from", TO, "--to", FROM],
         "--from 2026-01-01T00:05:00+00:00 is later than --to 2026-01-01T00:00:00+00:00"),
        (["--from", FROM, "--to", TO, "--max", "5"],
         "backfill of job tick covers 6 slots, more than --max 5: narrow --from/--to"),
        (["--from", "yesterday", "--to", TO], "--from: expected an ISO 8601 instant, got 'yesterday'"),
    ],
)  # fmt: skip
def test_backfill_refusals(run: Any, redis_server: RedisServer, args: list[str], line: str) -> None:
    done = run("backfill", "tick", *args)
    assert (done.exit_code, done.stdout, done.stderr) == (2, "", f"scheduler: {line}\n")
    assert redis_server.client().llen(QUEUE) == 0


def test_backfill_is_bounded_by_default(
    tmp_path: Path, redis_server: RedisServer, run: Any
) -> None:
    every_second = {**MINUTELY, "every": "1s", "start": "2025-12-31T00:00:00Z"}
    path = configure(tmp_path, redis_server.url, {"tick": every_second})
    done = run("backfill", "tick", "--from", "2025-01-01T00:00:00Z", "--to",
               "2026-01-01T01:00:00Z", config=path)  # fmt: skip
    assert (done.exit_code, done.stdout, done.stderr) == (2, "", (
        "scheduler: backfill of job tick covers 90001 slots, more than --max 10000: narrow "
        "--from/--to\n"))  # fmt: skip


def test_backfill_from_before_the_jobs_start_covers_only_its_slots(run: Any) -> None:
    # The job starts at T0: from a year before, only T0 .. T0 + 300 are slots.
    done = run("backfill", "tick", "--from", "2025-01-01T00:00:00Z", "--to", TO, "--dry-run")
    assert done.stdout.splitlines()[0].startswith("backfill job tick: 6 slots in")


def test_confirmation_refusal_sends_nothing_and_yes_sends_all(
    tmp_path: Path, redis_server: RedisServer, run: Any
) -> None:
    path = configure(tmp_path, redis_server.url, {"tick": {**MINUTELY, "every": "30s"}})
    client = redis_server.client()
    args = ["backfill", "tick", "--from", FROM, "--to", "2026-01-01T00:50:00Z"]  # 101 slots
    question = ("send 101 backfill fires of job tick [2026-01-01T00:00:00+00:00, "
                "2026-01-01T00:50:00+00:00]? [y/N]:")  # fmt: skip
    for answer in ("n\n", "", "\n"):
        refused = run(*args, stdin=answer, config=path)
        # (CliRunner echoes the answer to stdout, as a terminal would show it typed.)
        assert (refused.exit_code, refused.stdout.strip()) == (1, answer.strip())
        assert refused.stderr.startswith(question)
        assert refused.stderr.endswith("scheduler: backfill cancelled: nothing sent\n")
        assert client.llen(QUEUE) == 0
        assert not history(client)
    agreed = run(*args, stdin="y\n", config=path)
    assert agreed.exit_code == 0
    assert client.llen(QUEUE) == 101
    client.delete(QUEUE, f"{NS}:history")
    assert run(*args, "--yes", config=path).exit_code == 0
    assert len({m["id"] for m in sent(client)}) == 101
    # 100 slots are sent without asking.
    client.delete(QUEUE, f"{NS}:history")
    hundred = run("backfill", "tick", "--from", FROM, "--to", "2026-01-01T00:49:30Z", config=path)
    assert (hundred.exit_code, hundred.stderr, client.llen(QUEUE)) == (0, "", 100)


# -- pause and resume ----------------------------------------------------------------------

JOBS = {"tick": MINUTELY, "tock": {**MINUTELY, "every": "2m"}}


def pause_info(client: redis.Redis) -> dict[str, dict[str, Any]]:
    raw: dict[bytes, bytes] = client.hgetall(f"{NS}:pause_info")  # type: ignore[assignment]
    return {k.decode(): json.loads(v) for k, v in raw.items()}


def test_pause_records_when_why_and_the_watermark(
    tmp_path: Path, redis_server: RedisServer, run: Any
) -> None:
    path = configure(tmp_path, redis_server.url, JOBS)
    client = redis_server.client()
    client.hset(f"{NS}:watermarks", "tick", str(T0 + 60))
    before = float(client.time()[0])
    done = run("jobs", "pause", "tick", "--reason", "db migration", config=path)
    assert (done.exit_code, done.stdout, done.stderr) == (0, "tick: paused (db migration)\n", "")
    assert client.smembers(f"{NS}:paused") == {b"tick"}
    info = pause_info(client)["tick"]
    assert (info["reason"], info["watermark"]) == ("db migration", T0 + 60)
    assert before <= info["since"] <= float(client.time()[0]) + 1
    # Paused again: the first pause's record stays (its watermark bounds the catch-up).
    client.hset(f"{NS}:watermarks", "tick", str(T0 + 120))
    again = run("pause", "tick", "--reason", "other", config=path)
    since = slot_text(int(info["since"]))
    assert again.stdout == f"tick: already paused since {since} (db migration)\n"
    assert pause_info(client)["tick"] == info
    # A job never claimed has no watermark yet.
    assert run("pause", "tock", config=path).stdout == "tock: paused\n"
    assert pause_info(client)["tock"]["watermark"] is None


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["pause", "nope"], "no job named 'nope' in {path} nor among the runtime jobs"),
        (["resume", "nope"], "no job named 'nope' in {path} nor among the runtime jobs"),
        (["pause"], "give a job name, or --all"),
        (["resume", "tick", "--all"], "give a job name or --all, not both"),
        (["pause", "tick", "--reason", "x" * 201], "--reason: at most 200 characters, got 201"),
        (["pause", "tick", "--reason", "a\tb"],
         "--reason: printable text only (no control characters or line breaks)"),
    ],
)  # fmt: skip
def test_pause_and_resume_refusals(
    run: Any, redis_server: RedisServer, tmp_path: Path, args: list[str], line: str
) -> None:
    done = run(*args)
    path = tmp_path / "scheduler.toml"
    assert (done.exit_code, done.stdout, done.stderr) == (
        2,
        "",
        f"scheduler: {line.format(path=path)}\n",
    )
    assert not redis_server.client().exists(f"{NS}:paused", f"{NS}:pause_info")


def test_resume_from_now_sends_nothing_and_clears_the_record(
    tmp_path: Path, redis_server: RedisServer, run: Any
) -> None:
    path = configure(tmp_path, redis_server.url, JOBS)
    client = redis_server.client()
    client.hset(f"{NS}:watermarks", "tick", str(T0))
    run("pause", "tick", config=path)
    client.hset(f"{NS}:watermarks", "tick", str(T0 + 300))  # five slots skipped
    done = run("jobs", "resume", "tick", config=path)
    assert (done.exit_code, done.stdout, done.stderr) == (0, "tick: resumed\n", "")
    assert not client.exists(f"{NS}:paused", f"{NS}:pause_info")
    assert client.llen(QUEUE) == 0
    assert run("resume", "tick", "--catchup", config=path).stdout == "tick: was not paused\n"
    assert run("resume", "--all", config=path).stdout == "no job was paused\n"


def test_resume_catchup_fires_exactly_the_skipped_slots(
    tmp_path: Path, redis_server: RedisServer, run: Any
) -> None:
    path = configure(tmp_path, redis_server.url, JOBS)
    client = redis_server.client()
    client.hset(f"{NS}:watermarks", mapping={"tick": str(T0), "tock": str(T0)})
    assert run("pause", "--all", config=path).stdout == "tick: paused\ntock: paused\n"
    # While paused the leader advanced the watermarks over the skipped slots.
    client.hset(f"{NS}:watermarks", mapping={"tick": str(T0 + 180), "tock": str(T0 + 240)})
    # One of them already ran (a worker's run claim): not repeated.
    client.set(f"{NS}:run:{task_id(NS, 'tick', T0 + 120)}", "done w")
    done = run("resume", "--all", "--catchup", config=path)
    assert (done.exit_code, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        "tick: resumed",
        "tock: resumed",
        "tick: caught up 2 slots skipped while paused (2026-01-01T00:01:00Z .. "
        "2026-01-01T00:03:00Z), skipped 1 already fired",
        "tock: caught up 2 slots skipped while paused (2026-01-01T00:02:00Z .. "
        "2026-01-01T00:04:00Z)",
    ]
    wanted = [("tick", T0 + 60), ("tick", T0 + 180), ("tock", T0 + 120), ("tock", T0 + 240)]
    messages = sent(client)
    assert [(m["scheduler_job"], m["id"]) for m in messages] == [
        (job, task_id(NS, job, s)) for job, s in wanted
    ]
    assert {m["scheduler_kind"] for m in messages} == {"catchup"}
    assert [(h["job"], h["slot"], h["kind"]) for h in history(client)] == [
        (job, str(s), "catchup") for job, s in wanted
    ]
    assert not client.exists(f"{NS}:paused", f"{NS}:pause_info")


def test_resume_catchup_bounds_and_confirmation_change_nothing_when_refused(
    tmp_path: Path, redis_server: RedisServer, run: Any
) -> None:
    path = configure(tmp_path, redis_server.url, {"tick": {**MINUTELY, "every": "30s"}})
    client = redis_server.client()
    client.hset(f"{NS}:watermarks", "tick", str(T0))
    run("pause", "tick", config=path)
    client.hset(f"{NS}:watermarks", "tick", str(T0 + 101 * 30))  # 101 slots skipped
    too_many = run("resume", "tick", "--catchup", "--max", "100", config=path)
    assert (too_many.exit_code, too_many.stdout, too_many.stderr) == (2, "", (
        "scheduler: catch-up of job tick covers 101 slots, more than --max 100: nothing "
        "resumed\n"))  # fmt: skip
    refused = run("resume", "tick", "--catchup", stdin="n\n", config=path)
    assert (refused.exit_code, refused.stdout.strip()) == (1, "n")
    assert refused.stderr == ("resume and send 101 slots skipped while paused? [y/N]:"
                              "scheduler: resume cancelled: nothing changed\n")  # fmt: skip
    assert client.smembers(f"{NS}:paused") == {b"tick"}
    assert "tick" in pause_info(client)
    assert client.llen(QUEUE) == 0
    agreed = run("resume", "tick", "--catchup", "--yes", config=path)
    assert agreed.exit_code == 0
    assert client.llen(QUEUE) == 101


def test_resume_catchup_reports_an_unreadable_pause_record(
    tmp_path: Path, redis_server: RedisServer, run: Any
) -> None:
    path = configure(tmp_path, redis_server.url, JOBS)
    client = redis_server.client()
    client.sadd(f"{NS}:paused", "tick", "tock")
    client.hset(f"{NS}:pause_info", "tick", "garbage")
    done = run("resume", "--all", "--catchup", config=path)
    assert done.exit_code == 1
    assert (
        done.stdout == "tick: resumed\ntock: resumed\ntock: no pause record: nothing to catch up\n"
    )
    assert done.stderr == (
        f"scheduler: tick: cannot catch up: {NS}:pause_info field tick holds 'garbage', not a "
        "pause record\n"
    )
    assert not client.exists(f"{NS}:paused")
    assert client.llen(QUEUE) == 0


# -- with a live leader: the in-process node rig -------------------------------------------


def test_pause_all_then_resume_all_catchup_fires_exactly_what_the_leader_skipped(
    rig_factory: Any,  # noqa: F811 (the fixture imported above)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(common, "clock", ManualClock())
    second = {"task": "jobs.examples.ping", "every": "1s", "queue": QUEUE}
    rig = rig_factory({"a": second, "b": second}, max_clock_offset="30s")
    namespace = rig.node.keys.namespace

    def cli(*args: str) -> Any:
        return CliRunner().invoke(app, [*args, "--config", str(rig.path)])

    rig.lead()
    rig.tick()
    rig.tick()
    before = {(m["scheduler_job"], m["scheduler_slot"]) for m in sent(rig.redis)}
    assert cli("pause", "--all").stdout == "a: paused\nb: paused\n"
    for _ in range(3):
        rig.tick()
    assert {(m["scheduler_job"], m["scheduler_slot"]) for m in sent(rig.redis)} == before
    assert rig.redis.hgetall(f"{namespace}:paused_skips") == {b"a": b"3", b"b": b"3"}

    done = cli("resume", "--all", "--catchup")
    assert done.exit_code == 0, done.output
    resumed_s = int(rig.clock.time())
    skipped = [slot_text(resumed_s - n) for n in (2, 1, 0)]
    assert done.stdout.splitlines() == ["a: resumed", "b: resumed"] + [
        f"{job}: caught up 3 slots skipped while paused ({skipped[0]} .. {skipped[-1]})"
        for job in ("a", "b")
    ]
    caught_up = [m for m in sent(rig.redis) if m.get("scheduler_kind") == "catchup"]
    assert [(m["scheduler_job"], m["scheduler_slot"], m["id"]) for m in caught_up] == [
        (job, slot, task_id_of_text(namespace, job, slot)) for job in ("a", "b") for slot in skipped
    ]
    # The leader goes on from the next slot: every slot of the run fired exactly once.
    rig.tick()
    messages = sent(rig.redis)
    for job in ("a", "b"):
        slots = sorted(m["scheduler_slot"] for m in messages if m["scheduler_job"] == job)
        # Two fired before the pause, three caught up, one after.
        assert slots == [slot_text(resumed_s - 4 + n) for n in range(6)], job


def test_resume_from_now_records_what_the_pause_skipped_as_one_range(
    rig_factory: Any,  # noqa: F811 (the fixture imported above)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(common, "clock", ManualClock())
    rig = rig_factory({"a": {"task": "jobs.examples.ping", "every": "1s", "queue": QUEUE}},
                      max_clock_offset="30s")  # fmt: skip
    namespace = rig.node.keys.namespace

    def cli(*args: str) -> Any:
        return CliRunner().invoke(app, [*args, "--config", str(rig.path)])

    rig.lead()
    rig.tick()
    assert cli("pause", "a", "--reason", "deploy").exit_code == 0
    for _ in range(4):
        rig.tick()
    shown = CliRunner().invoke(full_app, ["jobs", "show", "a", "-c", str(rig.path)]).stdout
    assert "(deploy); 4 slots skipped so far: `resume --catchup` sends them" in shown
    as_json = CliRunner().invoke(full_app, ["jobs", "show", "a", "--json", "-c", str(rig.path)])
    assert json.loads(as_json.stdout)["skipped_while_paused"] == 4
    done = cli("resume", "a")
    assert done.stdout == "a: resumed\n"
    resumed_s = int(rig.clock.time())
    [(_, fields)] = rig.redis.xrange(f"{namespace}:missed")
    assert {k.decode(): v.decode() for k, v in fields.items()} == {
        "job": "a", "first": str(resumed_s - 3), "last": str(resumed_s), "count": "4",
        "reason": "paused", "token": "",
    }  # fmt: skip
    shown = json.loads(
        CliRunner().invoke(full_app, ["history", "a", "--json", "-c", str(rig.path)]).stdout
    )
    skipped = [row for row in shown if row["outcome"] == "skipped"]
    assert [(r["first"], r["last"], r["count"], r["reason"]) for r in skipped] == [
        (slot_text(resumed_s - 3), slot_text(resumed_s), 4, "paused")
    ]


def test_read_pause_info_for_jobs_show(tmp_path: Path, redis_server: RedisServer, run: Any) -> None:
    path = configure(tmp_path, redis_server.url, JOBS)
    client = redis_server.client()
    client.hset(f"{NS}:watermarks", "tick", str(T0))
    run("pause", "tick", "--reason", "deploy", config=path)
    client.hset(f"{NS}:pause_info", "tock", '{"since": "yesterday"}')
    store = StateStore(client, Keys(NS))
    reading = read_pause_info(store, ["tick", "tock", "other"])
    assert list(reading.value) == ["tick"]
    assert (reading.value["tick"]["reason"], reading.value["tick"]["watermark"]) == ("deploy", T0)
    assert [u.describe() for u in reading.unreadable] == [
        f"""{NS}:pause_info field tock holds '{{"since": "yesterday"}}', not a pause record"""
    ]
    client.delete(f"{NS}:pause_info")
    client.set(f"{NS}:pause_info", "x")
    assert [u.describe() for u in read_pause_info(store, ["tick"]).unreadable] == [
        f"{NS}:pause_info holds a string, not a hash"
    ]


@pytest.mark.parametrize(
    ("key", "args", "line"),
    [
        ("paused", ["pause", "tick"], "pausing jobs: ctl:paused holds a string, not a set"),
        ("paused", ["resume", "tick"], "resuming jobs: ctl:paused holds a string, not a set"),
        ("pause_info", ["pause", "tick"], "pausing jobs: ctl:pause_info holds a string, not a hash"),
        ("manual_sequence", ["trigger", "tick"],
         "numbering the manual fire: value is not an integer or out of range"),
        ("history", ["backfill", "tick", "--from", FROM, "--to", TO],
         "reading the history stream: WRONGTYPE Operation against a key holding the wrong kind of value"),
    ],
)  # fmt: skip
def test_a_wrong_value_in_redis_is_one_line_and_nothing_is_sent(
    run: Any, redis_server: RedisServer, key: str, args: list[str], line: str
) -> None:
    client = redis_server.client()
    if key != "pause_info":
        client.hset(f"{NS}:pause_info", "other", "kept")
    client.set(f"{NS}:{key}", "x")
    done = run(*args)
    assert (done.exit_code, done.stdout, done.stderr) == (
        1,
        "",
        f"scheduler: Redis error: {line}\n",
    )
    assert client.llen(QUEUE) == 0
    assert client.get(f"{NS}:{key}") == b"x"
    if key != "pause_info":
        assert client.hgetall(f"{NS}:pause_info") == {b"other": b"kept"}
