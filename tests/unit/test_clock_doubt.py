"""A clock measurement's doubt: half its round trip. A slow reply is not a clock step."""

from __future__ import annotations

import pytest

from scheduler.store.redis_time import clearly_off


@pytest.mark.parametrize(
    ("offset_s", "round_trip_s", "off"),
    [
        (0.0, 0.0, False),
        (1.0, 0.0, False),  # at the limit is within it
        (1.01, 0.0, True),
        (-1.01, 0.0, True),  # behind counts too
        (1.3, 0.8, False),  # a reply paused 0.8 s: 1.3 s could be 0.9 s, not clearly off
        (1.5, 0.8, True),  # but 1.5 s is at least 1.1 s
        (1.5, 1.2, False),
        (3600.0, 2.0, True),  # a real step stays a step, however slow the reply
        (-3600.0, 2.0, True),
    ],
)
def test_a_clock_is_off_only_beyond_the_limit_plus_half_the_round_trip(
    offset_s: float, round_trip_s: float, off: bool
) -> None:
    assert clearly_off(offset_s, round_trip_s, limit_s=1.0) is off
