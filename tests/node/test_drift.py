"""Config drift across nodes, in process: each node's heartbeat publishes its config's job
fingerprints (in chunks, completed by a marker); a standby whose config differs from the
leader's logs one ERROR naming the jobs that differ, again every 10 minutes while it lasts;
`status` flags it. The rig's nodes are given their config the way scheduler/node.py is to
give it (`Heartbeat(config=lambda: self.config)`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
import typer
from typer.testing import CliRunner

from scheduler.cli import status
from scheduler.config import load_config
from scheduler.heartbeat import DRIFT_CHECK_S, DRIFT_DETAIL_WAIT_S, DRIFT_REPEAT_S
from scheduler.store.configs import CHUNK, COMPLETE_FIELD, TTL_S, Publication, read_published
from scheduler.store.keys import Keys
from tests.conftest import RedisServer
from tests.node.conftest import QUEUE, Rig

RigFactory = Callable[..., Rig]

pytestmark = pytest.mark.timeout(60)

APP = typer.Typer()
APP.command()(status.status)
APP.command("other")(lambda: None)  # two commands: `status` stays a sub-command


def job(**schedule: object) -> dict[str, object]:
    return {"task": "jobs.examples.ping", "queue": QUEUE, **schedule}


A = {"a": job(cron="0 9 * * *"), "b": job(every="1m")}
B = {"a": job(cron="0 10 * * *", timezone="Europe/Berlin"), "c": job(every="1m")}


def with_config(rig: Rig) -> Rig:
    """What node.py's change gives the heartbeat: the node's current config."""
    rig.node.heartbeat.config = lambda: rig.node.config
    return rig


def drift_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if "config drift" in r.getMessage()]


def next_check(rig: Rig, seconds: float = DRIFT_CHECK_S) -> None:
    """Let the heartbeat's monotonic time pass (the wall clock stays within the offset)."""
    rig.clock.mono_s += seconds
    rig.node.heartbeat.beat()


def test_a_standby_with_another_config_logs_which_jobs_differ(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    leader = with_config(rig_factory(A, name="a.toml", node_id="n1"))
    standby = with_config(rig_factory(B, name="b.toml", node_id="n2"))
    leader.lead()
    leader.node.heartbeat.beat()
    caplog.clear()
    standby.node.heartbeat.beat()
    a, b = leader.node.config.hash, standby.node.config.hash
    line = (
        f"config drift: this node runs config {b} (2 jobs), the leader n1 runs {a}: added c; "
        "removed b; changed a (cron, timezone); if this node takes over it will run its own "
        "config"
    )
    assert drift_lines(caplog) == [(logging.ERROR, line)]
    next_check(standby)
    next_check(standby, DRIFT_REPEAT_S - 2 * DRIFT_CHECK_S)
    assert drift_lines(caplog) == [(logging.ERROR, line)]  # once per pair of configs...
    next_check(standby)
    assert drift_lines(caplog) == [(logging.ERROR, line)] * 2  # ...and again every 10 min
    standby.node.config = load_config(leader.path)  # a reload to the leader's config
    next_check(standby)
    assert drift_lines(caplog)[2:] == [
        (logging.INFO, f"config drift over: this node runs the leader's config {a}")
    ]
    next_check(standby)
    assert len(drift_lines(caplog)) == 3


def test_the_leaders_jobs_unpublished_the_drift_is_logged_after_a_wait(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    leader = rig_factory(A, name="a.toml", node_id="n1")
    leader.node.heartbeat.config = None  # a node that publishes nothing (an older version)
    standby = with_config(rig_factory(B, name="b.toml", node_id="n2"))
    leader.lead()
    leader.node.heartbeat.beat()
    standby.node.heartbeat.beat()
    assert drift_lines(caplog) == []  # the leader may be publishing: wait for the details
    next_check(standby, DRIFT_DETAIL_WAIT_S)
    a, b = leader.node.config.hash, standby.node.config.hash
    assert drift_lines(caplog) == [
        (
            logging.ERROR,
            f"config drift: this node runs config {b} (2 jobs), the leader n1 runs {a}: which "
            "jobs differ is unknown (its jobs are not published); if this node takes over it "
            "will run its own config",
        )
    ]


def test_status_flags_the_standby_of_a_live_leader(
    rig_factory: RigFactory, redis_server: RedisServer
) -> None:
    leader = with_config(rig_factory(A, name="a.toml", node_id="n1"))
    standby = with_config(rig_factory(B, name="b.toml", node_id="n2"))
    leader.lead()
    leader.node.heartbeat.beat()
    standby.node.heartbeat.beat()
    runner = CliRunner()
    shown = runner.invoke(APP, ["status", "-c", str(leader.path)])
    assert shown.exit_code == 0, shown.output
    a, b = leader.node.config.hash, standby.node.config.hash
    assert (
        f"WARNING: config drift: n2 runs config {b} (leader {a}): jobs added: c; removed: b; "
        "changed: a (cron, timezone)"
    ) in shown.stdout.splitlines()
    data = json.loads(runner.invoke(APP, ["status", "--json", "-c", str(leader.path)]).stdout)
    nodes = {node["node_id"]: node for node in data["nodes"]}
    assert (nodes["n1"]["leader"], nodes["n1"]["config_drift"]) == (True, False)
    assert (nodes["n2"]["leader"], nodes["n2"]["config_drift"]) == (False, True)
    assert data["fencing_token"] == leader.node.lease.token
    assert [entry["node_id"] for entry in data["drift"]] == ["n2"]


def test_publication_goes_in_chunks_and_counts_only_when_complete(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    jobs = "\n".join(
        f'[jobs.j{i:04}]\ntask = "jobs.examples.ping"\nevery = "1m"\n' for i in range(2500)
    )
    path = tmp_path / "many.toml"
    path.write_text(f'[scheduler]\nredis_url = "{redis_server.url}"\nnamespace = "pub"\n{jobs}')
    config = load_config(path)
    r = redis_server.client()
    keys = Keys("pub")
    key = keys.config_jobs(config.hash)
    r.set(key, "left by someone else")
    publication = Publication(r, keys, config.hash, config.jobs)
    assert publication.step(0.0) is False  # one chunk per step with no time to spare
    assert r.hlen(key) == CHUNK
    assert read_published(r, keys, config.hash).state == "incomplete"
    assert publication.step(0.0) is False
    assert publication.step(0.0) is True
    assert r.hlen(key) == 2500 + 1
    assert json.loads(r.hget(key, COMPLETE_FIELD)) == {"jobs": 2500}  # type: ignore[arg-type]
    assert TTL_S - 5 <= r.ttl(key) <= TTL_S
    published = read_published(r, keys, config.hash)
    assert published.state == "published"
    assert published.jobs == {name: spec.fingerprint() for name, spec in config.jobs.items()}
    # Another node with the same config: nothing rewritten, the TTL renewed.
    r.hset(key, "j0000", "garbled")
    r.expire(key, 60)
    assert Publication(r, keys, config.hash, config.jobs).step(0.0) is True
    assert r.hget(key, "j0000") == b"garbled"
    assert r.ttl(key) > 60


def test_the_heartbeat_publishes_at_start_and_after_a_reload(
    rig_factory: RigFactory, tmp_path: Path
) -> None:
    rig = with_config(rig_factory(A, name="a.toml", node_id="n1"))
    client: redis.Redis = rig.redis
    rig.node.heartbeat.beat()
    first = read_published(client, rig.node.keys, rig.node.config.hash)
    assert first.jobs is not None
    assert sorted(first.jobs) == ["a", "b"]
    reloaded = rig_factory(B, name="b.toml", node_id="n9").node.config
    rig.node.config = reloaded
    rig.node.heartbeat.beat()
    second = read_published(client, rig.node.keys, reloaded.hash)
    assert second.jobs is not None
    assert sorted(second.jobs) == ["a", "c"]
