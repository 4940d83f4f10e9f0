"""SIGHUP against a running leader, in process: whatever the file has become, the node lives
on, keeps firing its running config, and stays responsive (issue 9)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from scheduler.clock import SystemClock
from scheduler.config import load_config
from scheduler.node import Node
from scheduler.reload import SLOW_READ_S
from scheduler.wire import slot_text
from tests.node.conftest import QUEUE, Rig

RigFactory = Callable[..., Rig]

pytestmark = pytest.mark.timeout(60)


def every_second(**extra: object) -> dict[str, object]:
    return {"task": "jobs.examples.ping", "every": "1s", "queue": QUEUE, **extra}


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "reload refused" in r.getMessage()]


def reload_and_tick_twice(rig: Rig) -> None:
    """SIGHUP, the turn that starts the read, the read's end, then two ticks of 1 s."""
    rig.node.request_reload()
    rig.node.turn()
    pending = rig.node._reloading
    if pending is not None:
        assert pending.wait(10)
    rig.tick()
    rig.tick()


def unblock_fifo(path: Path) -> None:
    """A reader stuck opening the FIFO gets garbage and ends; without a reader, nothing."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # nobody reads it (the loader refused it without opening it for long)
    try:
        os.write(descriptor, b"not = [toml")
    finally:
        os.close(descriptor)


def test_a_config_that_became_a_fifo_never_stalls_the_loop(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    rig = rig_factory({"a": every_second()}, max_clock_offset="1h")
    rig.lead()
    running = rig.node.config.hash
    rig.path.unlink()
    os.mkfifo(rig.path)
    rig.node.request_reload()
    rig.tick()  # the loop turns and fires while the file is being read, or refused at once
    rig.clock.mono_s += SLOW_READ_S  # a read this slow is said to be stuck, once
    rig.tick()
    rig.tick()
    start = int(rig.clock.wall_s) - 3
    assert rig.fired() == [("a", slot_text(start + second)) for second in (1, 2, 3)]
    pending = rig.node._reloading
    if pending is not None:  # the read is stuck in the FIFO: say so, then let it end
        assert any("still reading" in r.getMessage() for r in caplog.records)
        unblock_fifo(rig.path)
        assert pending.wait(10)
    rig.tick()
    assert rig.node.config.hash == running
    [refused] = refusals(caplog)
    assert refused.startswith("reload refused, keeping the running config: ")
    assert rig.fired()[-1] == ("a", slot_text(start + 4))


BAD_CONFIGS = {
    "a zone that is a directory": ('timezone = "UTC"', 'timezone = "Europe"'),
    "an infinite interval": ('every = "1s"', "every = inf"),
    "an instant in year 9999": ('every = "1s"', "at = 9999-12-31T23:59:59-05:00"),
    "not TOML": ("[scheduler]", "[scheduler"),
}


@pytest.mark.parametrize(("old", "new"), BAD_CONFIGS.values(), ids=list(BAD_CONFIGS))
def test_a_bad_config_is_refused_and_the_running_one_keeps_firing(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture, old: str, new: str
) -> None:
    rig = rig_factory({"a": every_second()}, max_clock_offset="1h")
    rig.lead()
    running = rig.node.config.hash
    text = rig.path.read_text()
    assert old in text
    rig.path.write_text(text.replace(old, new, 1))
    reload_and_tick_twice(rig)
    assert rig.node.config.hash == running
    assert len(refusals(caplog)) == 1
    start = int(rig.clock.wall_s) - 2
    assert rig.fired() == [("a", slot_text(start + 1)), ("a", slot_text(start + 2))]


def test_a_good_config_is_applied_and_its_new_job_fires(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    rig = rig_factory({"a": every_second()}, max_clock_offset="1h")
    rig.lead()
    rig.path.write_text(
        rig.path.read_text() + '\n[jobs.b]\ntask = "t"\nevery = "1s"\nqueue = "parked"\n'
    )
    reload_and_tick_twice(rig)
    assert sorted(rig.node.config.jobs) == ["a", "b"]
    newest = slot_text(int(rig.clock.wall_s))
    assert ("b", newest) in rig.fired()
    assert refusals(caplog) == []


def test_sigterm_while_a_reload_hangs_stops_the_node(
    tmp_path: Path, rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    rig = rig_factory({"a": every_second()})
    node = Node(load_config(rig.path), "n-run", SystemClock())
    runner = threading.Thread(target=node.run, name="node")
    runner.start()
    try:
        rig.path.unlink()
        os.mkfifo(rig.path)
        node.request_reload()
        # The read is either still going (a reader that blocks) or already refused (the
        # loader refuses a FIFO at once now); either way the loop must have started it.
        deadline = time.monotonic() + 10
        while not (node._reloading is not None or refusals(caplog)):
            assert time.monotonic() < deadline, "the loop never started the reload"
            time.sleep(0.01)  # poll: the loop thread starts the read, there is no event for it
        node.request_stop()
        runner.join(timeout=20)
        assert not runner.is_alive(), "a hung reload kept the node from stopping"
    finally:
        node.request_stop()
        unblock_fifo(rig.path)
        runner.join(timeout=20)
    assert "node n-run stopped" in [
        r.getMessage() for r in caplog.records if r.levelno >= logging.INFO
    ]
