"""``H`` per field: each field of a job draws its own number, so ``H H * * *`` covers the day."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

from scheduler.triggers import compile_cron

NAMES = [f"job-{i}" for i in range(14_400)]  # fixed names: the bounds below cannot flake
MINUTES_A_DAY = 1440


def _minute_of_day(text: str) -> int:
    minute, hour = text.split()[:2]
    return int(hour) * 60 + int(minute)


def test_h_h_reaches_nearly_every_minute_of_the_day_evenly() -> None:
    counts = Counter(_minute_of_day(compile_cron("H H * * *", name).text) for name in NAMES)
    # 10 names a minute on average; Poisson(10) leaves about 0.07 minutes empty. With one hash
    # for both fields (before issue 12) only 120 minutes were ever reached.
    assert len(counts) >= MINUTES_A_DAY - 3
    expected = len(NAMES) / MINUTES_A_DAY
    chi_square = sum((counts[m] - expected) ** 2 / expected for m in range(MINUTES_A_DAY))
    # 1,439 degrees of freedom: mean 1,439, standard deviation ~54. Measured: 1496.2.
    assert chi_square < 1439 + 4 * 54
    assert max(counts.values()) < 3 * expected


def test_the_day_fields_spread_over_their_hash_ranges() -> None:
    resolved = [compile_cron("0 0 H * H", name).text.split() for name in NAMES[:2800]]
    days = Counter(int(fields[2]) for fields in resolved)
    weekdays = Counter(int(fields[4]) for fields in resolved)
    assert sorted(days) == list(range(1, 29))  # 1-28: a day every month has
    assert sorted(weekdays) == list(range(7))  # 0-6: Sunday drawn once, not as 0 and 7
    assert 50 < min(days.values()) <= max(days.values()) < 150  # 100 a day on average
    assert 320 < min(weekdays.values()) <= max(weekdays.values()) < 480  # 400 a weekday


def test_one_name_is_pinned() -> None:
    # A change of the hash moves every H job: this line makes it visible.
    assert compile_cron("H H * * *", "nightly-report").text == "44 20 * * *"
    assert compile_cron("H H(8-17) * * MON-FRI", "standup").text == "48 13 * * MON-FRI"
    # H/n draws from the same number per field: minute % 60 = 48, % 20 = 8; hour % 10 = 5, % 6 = 5.
    assert compile_cron("H/20 H/6 * * *", "standup").text == "8-59/20 5-23/6 * * *"


def test_the_same_values_in_another_process_with_another_hash_seed() -> None:
    code = (
        "from scheduler.triggers import compile_cron\n"
        "print(compile_cron('H H H H H H', 'nightly-report').text)\n"
    )
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "37 44 20 11 3 5"
