"""SIGHUP reloads the config of a running leader: a good file adds jobs at once, a bad one is
refused with the same one line `scheduler validate` prints, and the node carries on as it was."""

from __future__ import annotations

import dataclasses
import math
import signal
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from .harness import (
    PARKED,
    Cluster,
    ParkedQueue,
    check_every_slot_once,
    check_no_repeats,
    every_second,
    of_job,
    wait_until,
)

NAMESPACE = "it-reload"
RUN_S = 2


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_sighup_adds_a_job_and_refuses_a_bad_config(
    cluster: Cluster, parked: ParkedQueue, tmp_path: Path
) -> None:
    def write(jobs: Mapping[str, Mapping[str, object]]) -> None:
        cluster.configure(namespace=NAMESPACE, jobs=jobs)

    write({"A": every_second()})
    cluster.bring_up("n1")
    node = cluster.nodes["n1"]
    window_first_s = math.ceil(time.time()) + 1
    parked.wait_for_slots(["A"], window_first_s + RUN_S)

    # (a) A good file with one more job: B starts firing, A goes on untouched.
    write({"A": every_second(), "B": every_second()})
    good_hash = cluster.config_hash()
    reload_at = time.time()
    node.signal(signal.SIGHUP)
    wait_until(
        lambda: f"config reloaded: 2 jobs, hash {good_hash}" in node.log_text(),
        timeout_s=15,
        what="the reload to be logged",
        on_timeout=node.tail,
    )
    b_seen = parked.wait_for(
        lambda messages: of_job("B", messages), what="B's first slot", timeout_s=15
    )
    b_first_s = min(m.slot_s for m in b_seen)
    # A new job starts at the leader's "now": nothing from before it existed.
    assert b_first_s > math.floor(reload_at), (b_first_s, reload_at)
    parked.wait_for_slots(["A", "B"], b_first_s + RUN_S)

    # (c) `scheduler validate` refuses the bad file with one line and exit code 2.
    # `status` needs a valid file; the node keeps reading the config, which turns bad below.
    good_copy = tmp_path / "good.toml"
    good_copy.write_text(cluster.config_path.read_text(encoding="utf-8"), encoding="utf-8")
    never = {"task": "jobs.examples.ping", "cron": "0 0 30 2 *", "queue": PARKED}
    write({"A": every_second(), "B": every_second(), "X": never})
    refused = cluster.cli("validate")
    assert refused.returncode == 2, refused
    assert refused.stdout == ""
    assert "Traceback" not in refused.stderr
    (reason,) = refused.stderr.splitlines()
    assert (
        reason
        == "scheduler.toml: jobs.X.cron: never fires (day-of-month 30 never occurs in February)"
    )

    # (b) The running node refuses it too, says why in one line, and keeps the last good config.
    node.signal(signal.SIGHUP)
    refusal = f"reload refused, keeping the running config: {reason}"
    wait_until(
        lambda: refusal in node.log_text(),
        timeout_s=15,
        what="the refusal to be logged",
        on_timeout=node.tail,
    )
    refused_at = time.time()
    refusals = [line for line in node.log_text().splitlines() if "reload refused" in line]
    assert len(refusals) == 1, refusals
    assert refusals[0].endswith(refusal), refusals
    window_last_s = math.ceil(refused_at) + RUN_S
    messages = parked.wait_for_slots(["A", "B"], window_last_s)
    assert node.alive()
    assert "Traceback" not in node.log_text()
    status = dataclasses.replace(cluster, config_path=good_copy).status()  # same Redis, namespace
    assert status["leader"] == "n1"
    (record,) = status["nodes"]
    assert record["config_hash"] == good_hash  # still running the last good config

    check_every_slot_once(of_job("A", messages), ["A"], window_first_s, window_last_s)
    check_every_slot_once(of_job("B", messages), ["B"], b_first_s, window_last_s)
    assert {m.job for m in messages} == {"A", "B"}  # X never fired
    check_no_repeats(messages, namespace=NAMESPACE)
