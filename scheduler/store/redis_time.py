"""Redis TIME: the one clock every node of a deployment compares its own with."""

from __future__ import annotations

import redis

from scheduler.clock import Clock
from scheduler.store.failures import redis_errors


@redis_errors("reading Redis TIME")
def offset_to_redis(client: redis.Redis, clock: Clock) -> tuple[float, float]:
    """(offset, round trip) in seconds: Redis TIME minus our wall time at the midpoint."""
    sent = clock.time()
    sent_mono = clock.monotonic()
    seconds, micros = client.time()
    round_trip = clock.monotonic() - sent_mono
    server = seconds + micros / 1_000_000
    return server - (sent + round_trip / 2), round_trip
