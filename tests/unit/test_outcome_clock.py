"""A worker's outcome record is stamped by the clock it is given."""

from __future__ import annotations

import json
from typing import Any

from scheduler.store.keys import Keys
from scheduler.store.outcomes import record_outcome
from tests.clocks import ManualClock


class RecordingClient:
    """Just enough of redis.Redis for record_outcome: remembers each HSET."""

    def __init__(self) -> None:
        self.fields: dict[tuple[str, str], str] = {}

    def hset(self, key: str, field: str, value: str) -> int:
        self.fields[(key, field)] = value
        return 1


def test_the_outcome_is_stamped_by_the_given_clock() -> None:
    client: Any = RecordingClient()
    record_outcome(
        client,
        "ns",
        "tick",
        "2026-01-01T00:03:00Z",
        "id-1",
        "succeeded",
        clock=ManualClock(wall_s=1_767_225_780.1234),
    )
    record = json.loads(client.fields[(Keys("ns").outcomes, "tick")])
    assert record["at"] == 1_767_225_780.123
