"""A reload says what it did: every [scheduler] key either takes effect on the running node
or is named, in the log and in `scheduler status`, as waiting for a restart."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from scheduler.cli import app
from scheduler.wire import slot_text
from tests.node.conftest import QUEUE, Rig

RigFactory = Callable[..., Rig]

pytestmark = pytest.mark.timeout(60)


def every_second() -> dict[str, object]:
    return {"task": "jobs.examples.ping", "every": "1s", "queue": QUEUE}


def reload(rig: Rig) -> None:
    rig.node.request_reload()
    rig.node.turn()
    pending = rig.node._reloading
    if pending is not None:  # else the read ended within that turn and was applied there
        assert pending.wait(10)
    rig.tick()


def said(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level and "reload" in r.msg]


def test_live_keys_apply_and_start_keys_are_named_as_waiting(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    rig = rig_factory({"a": every_second()}, outbox_max=50)
    rig.lead()
    node = rig.node
    text = rig.path.read_text()
    text = text.replace('max_clock_offset = "5s"', 'max_clock_offset = "3s"')
    text = text.replace('lease_ttl = "2s"', 'lease_ttl = "6s"')
    text = text.replace('namespace = "it"', 'namespace = "elsewhere"')
    text += '\n[jobs.b]\ntask = "t"\nevery = "1s"\nqueue = "parked"\n'
    rig.path.write_text(text)
    caplog.clear()
    reload(rig)

    assert said(caplog, logging.INFO) == [
        f"config reloaded: 2 jobs, hash {node.config.hash}; added b; applied max_clock_offset; "
        "restart needed for namespace, lease_ttl (kept as running)"
    ]
    assert said(caplog, logging.WARNING) == [
        "reload: namespace, lease_ttl changed and take effect only after a restart; running "
        "with the values read at start"
    ]
    # Applied: the clock check and the claims' window use the new offset at once.
    assert (node.max_offset_s, node.heartbeat.limit_s, node.claims.max_ahead_s) == (3.0, 3.0, 3)
    # Kept: the lease, its keys and the config's view of them are what the node started with.
    assert node.lease.ttl_ms == 2000
    assert node.keys.namespace == "it"
    assert node.config.scheduler.lease_ttl == timedelta(seconds=2)
    assert node.config.scheduler.namespace == "it"
    assert node.restart_needed == ("namespace", "lease_ttl")
    # The new job fires (from the next slot on), in the running namespace.
    rig.tick()
    newest = slot_text(int(rig.clock.wall_s))
    assert ("b", newest) in rig.fired()

    # The heartbeat record carries it, and `status` says it.
    node.heartbeat.beat()
    record = node.heartbeat.record()
    assert record["restart_needed"] == ["namespace", "lease_ttl"]
    # (`status` reads the namespace from its config: the one the node still runs in.)
    running = rig.path.with_name("running.toml")
    running.write_text(rig.path.read_text().replace('"elsewhere"', '"it"'))
    result = CliRunner().invoke(app, ["status", "-c", str(running)])
    assert (
        "RESTART NEEDED: node n1: a reload changed namespace, lease_ttl, which it reads only "
        "at start"
    ) in result.output.splitlines(), result.output

    # Setting them back clears the wait.
    rig.path.write_text(
        rig.path.read_text()
        .replace('lease_ttl = "6s"', 'lease_ttl = "2s"')
        .replace('namespace = "elsewhere"', 'namespace = "it"')
    )
    reload(rig)
    assert node.restart_needed == ()
    assert node.heartbeat.record()["restart_needed"] == []
