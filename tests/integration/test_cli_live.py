"""The operator's CLI against a live node: `status`, `jobs list`, `jobs pause`/`resume`; and
against a Redis nobody listens on: one clear line, exit 1, no traceback, no password."""

from __future__ import annotations

import importlib.metadata
import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port

from .harness import (
    SLOT_FORMAT,
    Cluster,
    ParkedQueue,
    check_every_slot_once,
    check_no_repeats,
    child_env,
    every_second,
    of_job,
    run_cli,
    wait_until,
    write_config,
)

NAMESPACE = "it-cli"
WORKED = "it-cli-worked"  # a worker consumes it
LEASE_TTL_MS = 1500
PAUSE_SLACK_S = 2  # a slot claimed while `pause` was on its way may still go out
RUN_S = 2
PASSWORD = "hunter2"


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_status_jobs_list_pause_and_resume_against_a_live_node(
    cluster: Cluster, parked: ParkedQueue
) -> None:
    cluster.configure(
        namespace=NAMESPACE,
        lease_ttl=f"{LEASE_TTL_MS}ms",
        jobs={
            "greet": every_second("jobs.examples.hello", args=["cli"], queue=WORKED),
            "tick": every_second(),
            "tock": every_second(),
        },
    )
    cluster.bring_up("n1", worker_queue=WORKED)
    config_hash = cluster.config_hash()

    # -- status ---------------------------------------------------------------------------
    status = cluster.wait_for_records("n1")
    assert status["leader"] == "n1"
    assert isinstance(status["fencing_token"], int)
    assert not isinstance(status["fencing_token"], bool)
    assert 0 < status["lease_left_ms"] <= LEASE_TTL_MS
    assert status["config_hash"] == config_hash
    (node,) = status["nodes"]
    assert node["node_id"] == "n1"
    assert isinstance(node["clock_offset_ms"], int | float)
    assert abs(node["clock_offset_ms"]) < 1000  # one host: well within max_clock_offset
    assert node["config_hash"] == config_hash
    assert node["tzdata"] == importlib.metadata.version("tzdata")

    # -- jobs list: last run of every job, and the worker's outcome -------------------------
    def listed() -> dict[str, dict[str, Any]] | None:
        rows = {row["name"]: row for row in cluster.cli_json("jobs", "list")}
        if rows["greet"]["outcome"] != "succeeded":
            return None
        return rows if all(row["last_run"] for row in rows.values()) else None

    rows = wait_until(listed, timeout_s=30, what="greet to succeed", interval_s=0.3)
    assert sorted(rows) == ["greet", "tick", "tock"]
    for name, row in rows.items():
        assert SLOT_FORMAT.fullmatch(row["last_run"]), row
        assert row["paused"] is False
        assert row["task"] == ("jobs.examples.hello" if name == "greet" else "jobs.examples.ping")
        assert row["next_run"]

    # -- pause tick: its slots stop, tock's go on -------------------------------------------
    # One node, two new jobs: from the first slot either fired on, each slot goes out once.
    fired = parked.messages()
    window_first_s = max(min(m.slot_s for m in of_job(job, fired)) for job in ("tick", "tock"))
    pause_sent_at = time.time()
    paused = cluster.cli("jobs", "pause", "tick")
    paused_at = time.time()
    assert (paused.returncode, paused.stdout, paused.stderr) == (0, "tick: paused\n", "")
    rows = {row["name"]: row for row in cluster.cli_json("jobs", "list")}
    assert [name for name, row in rows.items() if row["paused"]] == ["tick"]
    # tock runs on through at least RUN_S seconds of slots that tick must not send.
    parked.wait_for_slots(["tock"], math.ceil(paused_at) + PAUSE_SLACK_S + RUN_S + 1)

    resume_sent_at = time.time()
    resumed = cluster.cli("jobs", "resume", "tick")
    resumed_at = time.time()
    assert (resumed.returncode, resumed.stdout, resumed.stderr) == (0, "tick: resumed\n", "")
    window_last_s = math.ceil(resumed_at) + RUN_S
    messages = parked.wait_for_slots(["tick", "tock"], window_last_s)

    tick = of_job("tick", messages)
    paused_s = (paused_at + PAUSE_SLACK_S, resume_sent_at - 1)  # surely paused in between
    while_paused = [m.slot for m in tick if paused_s[0] < m.slot_s < paused_s[1]]
    assert not while_paused, f"tick fired while paused: {while_paused}"
    # Before the pause and after the resume, every tick slot once; tock never stopped.
    check_every_slot_once(tick, ["tick"], window_first_s, math.floor(pause_sent_at) - 1)
    check_every_slot_once(tick, ["tick"], math.ceil(resumed_at), window_last_s)
    check_every_slot_once(of_job("tock", messages), ["tock"], window_first_s, window_last_s)
    check_no_repeats(messages)


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_cli_with_unreachable_redis_says_one_line_and_hides_the_password(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    config = write_config(
        tmp_path / "scheduler.toml",
        redis_url=f"redis://127.0.0.1:{port}/0",
        namespace=NAMESPACE,
        lease_ttl="1s",
        jobs={"tick": {"task": "jobs.examples.ping", "every": "1s"}},
    )
    plain = child_env(config)
    url_password = {**plain, "SCHEDULER_REDIS_URL": f"redis://:{PASSWORD}@127.0.0.1:{port}/0"}
    env_password = {**plain, "SCHEDULER_REDIS_PASSWORD": PASSWORD}
    cases = [
        (command, env_name, env)
        for command in (["status", "--json"], ["jobs", "list", "--json"])
        for env_name, env in (
            ("no password", plain),
            ("password in SCHEDULER_REDIS_URL", url_password),
            ("SCHEDULER_REDIS_PASSWORD", env_password),
        )
    ]
    with ThreadPoolExecutor(max_workers=3) as pool:  # each run is a second of imports
        runs = list(
            pool.map(lambda case: run_cli([*case[0], "--config", str(config)], case[2]), cases)
        )
    for (command, env_name, env), done in zip(cases, runs, strict=True):
        where = f"`scheduler {' '.join(command)}` with {env_name}"
        assert done.returncode == 1, f"{where}: {done}"
        assert done.stdout == "", where
        assert "Traceback" not in done.stderr, where
        lines = done.stderr.splitlines()
        assert len(lines) == 1, f"{where}: {done.stderr}"
        assert PASSWORD not in done.stdout + done.stderr, where
        if env is plain:
            assert lines[0].startswith(
                f"scheduler: cannot reach Redis at redis://127.0.0.1:{port}/0"
            ), where
        else:
            assert lines[0].startswith("scheduler: cannot reach Redis at redis://"), where
            assert f"@127.0.0.1:{port}/0" in lines[0], where
