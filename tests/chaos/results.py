"""The short/long switch, and the figures each chaos run records for docs/guarantees.md.

``CHAOS_LONG=1`` selects the long variants (`make chaos`); without it the short ones run as part
of `make test`. Each test appends one JSON line to ``.chaos-results/results.jsonl`` (or
``$CHAOS_RESULTS``) whatever its outcome; `python -m tests.chaos.report` renders the table.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.integration.harness import REPO_ROOT

from .observe import Tally

T = TypeVar("T")

LONG = os.environ.get("CHAOS_LONG", "") not in ("", "0")
VARIANT = "long" if LONG else "short"


def pick(short: T, long: T) -> T:
    """The value for the variant being run."""
    return long if LONG else short


def seed(figures: Figures) -> int:
    """The random seed of this run's fault timing: $CHAOS_SEED, or a fresh one (recorded)."""
    value = int(os.environ.get("CHAOS_SEED") or random.randrange(2**32))
    figures.notes["seed"] = value
    return value


def results_path() -> Path:
    override = os.environ.get("CHAOS_RESULTS")
    return Path(override) if override else REPO_ROOT / ".chaos-results" / "results.jsonl"


@dataclass
class Figures:
    """What one run of one scenario measured. Counts are over the asserted window."""

    scenario: str
    faults: int = 0  # faults injected (kills, stops, cuts, restarts, offsets)
    slots_expected: int = 0  # (job, slot) pairs that had to reach the broker
    missing: int = 0  # of those, never at the broker
    repeated: int = 0  # extra copies at the broker (same task id)
    executed_expected: int | None = None  # pairs the worker had to run (None: no worker)
    executed_missing: int | None = None
    executed_twice: int | None = None  # extra executions of a pair
    max_gap_s: float | None = None  # worst fault-to-first-fire gap (see docs/guarantees.md)
    notes: dict[str, Any] = field(default_factory=dict)

    def gap(self, seconds: float) -> None:
        self.max_gap_s = round(max(self.max_gap_s or 0.0, seconds), 3)

    def count_at_broker(self, *tallies: Tally) -> None:
        """The pairs that had to reach the broker, summed over `tallies` (one per queue)."""
        self.slots_expected = sum(t.expected for t in tallies)
        self.missing = sum(len(t.missing) for t in tallies)
        self.repeated = sum(t.repeats for t in tallies)

    def count_executed(self, executed: Tally) -> None:
        """The pairs the worker had to run."""
        self.executed_expected = executed.expected
        self.executed_missing = len(executed.missing)
        self.executed_twice = executed.repeats


def _commit() -> str:
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() or "unknown"


def record(figures: Figures, *, test_id: str, outcome: str, duration_s: float) -> dict[str, Any]:
    """Append one run's figures to the results file; the record written."""
    command = f".venv/bin/python -m pytest '{test_id}'"
    entry = {
        **asdict(figures),
        "variant": VARIANT,
        "test": test_id,
        "command": f"CHAOS_LONG=1 {command}" if LONG else command,
        "outcome": outcome,
        "duration_s": round(duration_s, 1),
        "commit": _commit(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(entry, sort_keys=True) + "\n")
    return entry
