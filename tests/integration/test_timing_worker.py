"""When a job runs, end to end: a real node fires `calendar`, `start`/`max_runs`, `end`,
`enabled = false` and `jitter` jobs, and a real worker runs exactly what they allow."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import redis

from scheduler.jitter import jitter_s
from scheduler.store.keys import Keys

from .harness import Cluster, slot_text

NS = "it-timing"
QUEUE = "it-timing"


def runs(state: redis.Redis, job: str) -> list[tuple[int, str]]:
    """(stream time in ms, slot) of each `received` report of `job`, oldest first."""
    found = []
    for entry_id, fields in state.xrange(Keys(NS).reports(job)):
        if fields.get(b"event") == b"received":
            found.append((int(entry_id.split(b"-")[0]), fields[b"slot"].decode()))
    return found


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_timing_options_on_a_real_worker(cluster: Cluster) -> None:
    base = int(time.time()) + 6  # the node leads and the worker is up by then
    moment = datetime.fromtimestamp(base, UTC)
    ping = {"task": "jobs.examples.ping", "queue": QUEUE}
    cluster.configure(
        namespace=NS,
        jobs={
            # Once a day at base's time of day, from base's date: today's slot is base.
            "cal": {**ping, "calendar": {"days": 1, "at": moment.strftime("%H:%M:%S")},
                    "start": moment.date().isoformat(), "timezone": "UTC"},
            "capped": {**ping, "every": "1s", "start": slot_text(base), "max_runs": 3},
            "window": {**ping, "every": "1s", "start": slot_text(base),
                       "end": slot_text(base + 1)},
            "off": {**ping, "every": "1s", "enabled": False},
            "spread": {**ping, "every": "10s", "jitter": "8s"},
            # Runs after every slot the others could have had by base + 3: a 4th capped run
            # or a 3rd window run would be reported before it (one worker, in slot order).
            "marker": {**ping, "at": slot_text(base + 4)},
        },
    )  # fmt: skip
    cluster.bring_up("n1", worker_queue=QUEUE)
    state = cluster.state()
    cluster.wait_until(
        lambda: (runs(state, "marker") and runs(state, "spread")) or None,
        timeout_s=40,
        what="the marker's run and spread's first",
    )
    assert [slot for _, slot in runs(state, "cal")] == [slot_text(base)]
    assert [slot for _, slot in runs(state, "capped")] == [slot_text(base + s) for s in range(3)]
    assert [slot for _, slot in runs(state, "window")] == [slot_text(base), slot_text(base + 1)]
    assert runs(state, "off") == []
    received_ms, slot = runs(state, "spread")[0]
    slot_s = int(datetime.fromisoformat(slot.replace("Z", "+00:00")).timestamp())
    assert slot_s % 10 == 0  # the nominal slot is its identity...
    delay = jitter_s("spread", slot_s, 8, slot_s + 10)
    assert received_ms >= (slot_s + delay) * 1000  # ...and it was sent no sooner than + delay
