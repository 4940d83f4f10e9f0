"""Catch-up cost: how long ``decide()`` takes for a job whose watermark is far behind.

The leader decides one job at a time, so a job that missed a year of slots holds up every
other job for as long as its decision takes. This times ``scheduler.policy.decide`` against
the algorithm it replaced (``tests/triggers/reference.py``: every missed slot walked), on
the same inputs, checks that both give the same decision, and prints a table.

    .venv/bin/python bench/catchup.py           # the old algorithm skips watermark 0 (minutes)
    .venv/bin/python bench/catchup.py --slow    # ... and times it there too (~5 min a case)

In-process, no Redis. "now" is fixed (2026-11-26T12:00:00Z), misfire_grace is the default
5 minutes. "new" is the median of several runs once the zone's offset periods are cached;
"cold" is the first run with an empty cache (what a fresh leader pays once per zone).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.triggers.reference

from scheduler.jobspec import Catchup, JobSpec
from scheduler.policy import Decision, decide
from scheduler.triggers import CronTrigger, EveryTrigger, Trigger, compile_cron
from scheduler.triggers.cron import zone
from tests.triggers.reference import decide_by_walking

NOW_S = int(datetime(2026, 11, 26, 12, tzinfo=UTC).timestamp())
YEAR_S = 365 * 86_400
NEW_RUNS = 21
OLD_BUDGET_S = 30.0  # repeat the old algorithm while its runs fit in this much time


def _cron(text: str, zone_name: str = "UTC") -> CronTrigger:
    return CronTrigger(compile_cron(text, "bench"), ZoneInfo(zone_name))


def _job(trigger: Trigger, catchup: Catchup) -> JobSpec:
    return JobSpec("bench", "t", "cron", "", ZoneInfo("UTC"), trigger, catchup=catchup)


EVERY_1S = EveryTrigger(1, datetime(1970, 1, 1, tzinfo=UTC))
# (label, job, watermark, whether the old algorithm is slow enough to need --slow)
CASES: list[tuple[str, JobSpec, int, bool]] = [
    *[
        (f'"* * * * *" UTC, a year behind, {c}', _job(_cron("* * * * *"), c), NOW_S - YEAR_S, False)
        for c in ("all", "latest", "none")
    ],
    *[
        (f'"* * * * *" UTC, watermark 0, {c}', _job(_cron("* * * * *"), c), 0, True)
        for c in ("all", "latest", "none")
    ],
    ('every "1s", a year behind, all', _job(EVERY_1S, "all"), NOW_S - YEAR_S, False),
    ('every "1s", a year behind, latest', _job(EVERY_1S, "latest"), NOW_S - YEAR_S, False),
    (
        '"* * * * *" America/New_York, a year behind, all',
        _job(_cron("* * * * *", "America/New_York"), "all"),
        NOW_S - YEAR_S,
        False,
    ),
    (
        '"* * * * *" America/New_York, watermark 0, latest',
        _job(_cron("* * * * *", "America/New_York"), "latest"),
        0,
        True,
    ),
    (
        '"*/5 * * * *" Europe/Berlin, a year behind, latest',
        _job(_cron("*/5 * * * *", "Europe/Berlin"), "latest"),
        NOW_S - YEAR_S,
        False,
    ),
]


def _timed_s(run: Callable[[], Decision]) -> tuple[float, Decision]:
    started = time.perf_counter()
    decision = run()
    return time.perf_counter() - started, decision


def _old_median_s(job: JobSpec, mark: int) -> tuple[float, Decision]:
    def run() -> Decision:
        return decide_by_walking(job, mark, NOW_S, as_before=True)

    elapsed_s, decision = _timed_s(run)
    times_s = [elapsed_s]
    while sum(times_s) + times_s[0] < OLD_BUDGET_S and len(times_s) < 5:
        times_s.append(_timed_s(run)[0])
    return statistics.median(times_s), decision


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.2f}" if ms < 10 else f"{ms:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", action="store_true", help="time the old algorithm since 1970")
    args = parser.parse_args()
    print("| case | missed | new: median ms | new: cold ms | old ms | old / new | same |")
    print("| --- | --: | --: | --: | --: | --: | --- |")
    for label, job, mark, slow in CASES:
        zone._year_periods.cache_clear()  # the cold run starts from nothing
        run = partial(decide, job, mark, NOW_S)
        cold_s, decision = _timed_s(run)
        new_s = statistics.median(_timed_s(run)[0] for _ in range(NEW_RUNS))
        missed = sum(gap.count for gap in decision.missed)
        if slow and not args.slow:
            old, ratio, same = "(--slow)", "-", "-"
        else:
            old_s, expected = _old_median_s(job, mark)
            old, ratio = _ms(old_s), f"{old_s / new_s:,.0f}x"
            same = "yes" if decision == expected else "**NO**"
        print(
            f"| {label} | {missed:,} | {_ms(new_s)} | {_ms(cold_s)} | {old} | {ratio} | {same} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
