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


def clearly_off(offset_s: float, round_trip_s: float, limit_s: float) -> bool:
    """Whether a clock measured `offset_s` off Redis is off by more than `limit_s` for sure:
    the reply may have been read anywhere in its round trip, so half of it is doubt. A slow or
    paused reply must not look like a clock step."""
    return abs(offset_s) - round_trip_s / 2 > limit_s
