"""Render the chaos figures as the Markdown table of docs/guarantees.md.

    .venv/bin/python -m tests.chaos.report [--results PATH] [--variant short|long]

Reads the JSON lines the chaos tests append (``.chaos-results/results.jsonl`` by default) and
sums them per scenario and variant: runs (and how many failed), faults injected, (job, slot)
pairs expected at the broker, missing, repeated at the broker, executed twice, and the worst
gap, with the command that reproduces the row.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.chaos.results import results_path

# The order of scenarios: kill, zombie, Redis restart, Sentinel, broker, partition, clock.
MODULES = (
    "test_kill_leader",
    "test_zombie",
    "test_redis_restart",
    "test_sentinel",
    "test_broker_outage",
    "test_partition",
    "test_clock_offset",
)
COLUMNS = (
    "scenario",
    "variant",
    "runs",
    "faults injected",
    "slots expected",
    "missing",
    "repeated at the broker",
    "executed twice",
    "max gap (s)",
    "command",
)


@dataclass
class Row:
    scenario: str
    variant: str
    test: str = ""
    command: str = ""
    runs: int = 0
    failed: int = 0
    faults: int = 0
    expected: int = 0
    missing: int = 0
    repeated: int = 0
    executed: int = 0  # pairs the worker had to run, summed over runs with a worker
    executed_twice: int | None = None
    max_gap_s: float | None = None
    missing_means: str = ""  # what the missing pairs are, when they are missing by design
    commits: set[str] = field(default_factory=set)

    def add(self, entry: dict[str, Any]) -> None:
        self.runs += 1
        self.failed += entry.get("outcome") != "passed"
        self.faults += int(entry.get("faults") or 0)
        self.expected += int(entry.get("slots_expected") or 0)
        self.missing += int(entry.get("missing") or 0)
        self.repeated += int(entry.get("repeated") or 0)
        if entry.get("executed_twice") is not None:
            self.executed += int(entry.get("executed_expected") or 0)
            self.executed_twice = (self.executed_twice or 0) + int(entry["executed_twice"])
        gap = entry.get("max_gap_s")
        if gap is not None:
            self.max_gap_s = max(self.max_gap_s or 0.0, float(gap))
        notes = entry.get("notes", {})
        if notes.get("missing_means"):
            self.missing_means = notes["missing_means"]
        elif notes.get("recorded_missed") is not None:  # records written before missing_means
            self.missing_means = "recorded as missed ranges, by design"
        elif notes.get("lost_by_design"):
            self.missing_means = "lost with the data, by design"
        self.command = entry.get("command", self.command)
        self.commits.add(str(entry.get("commit", "?")))

    def cells(self) -> list[str]:
        runs = f"{self.runs}" + (f" ({self.failed} failed)" if self.failed else "")
        missing = f"{self.missing}" + (f" ({self.missing_means})" if self.missing_means else "")
        twice = "—" if self.executed_twice is None else f"{self.executed_twice} of {self.executed}"
        gap = "—" if self.max_gap_s is None else f"{self.max_gap_s:.2f}"
        return [
            self.scenario,
            self.variant,
            runs,
            str(self.faults),
            str(self.expected),
            missing,
            str(self.repeated),
            twice,
            gap,
            f"`{self.command}`",
        ]


def read_entries(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            entries.append(json.loads(line))
    return entries


def rows(entries: Iterable[dict[str, Any]], variant: str | None = None) -> list[Row]:
    table: dict[tuple[str, str], Row] = {}
    for entry in entries:
        if variant is not None and entry.get("variant") != variant:
            continue
        test = entry.get("test", entry["scenario"])
        key = (test, entry.get("variant", "?"))
        row = table.setdefault(key, Row(entry["scenario"], entry.get("variant", "?"), test))
        row.add(entry)
    return sorted(table.values(), key=_order)


def _order(row: Row) -> tuple[int, str, int]:
    module = row.test.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
    rank = MODULES.index(module) if module in MODULES else len(MODULES)
    return rank, row.test, 0 if row.variant == "short" else 1


def markdown(found: Sequence[Row]) -> str:
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "| " + " | ".join("---" for _ in COLUMNS) + " |",
    ]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in found]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=results_path())
    parser.add_argument("--variant", choices=("short", "long"))
    args = parser.parse_args(argv)
    found = rows(read_entries(args.results), args.variant)
    print(markdown(found))
    commits = sorted({c for row in found for c in row.commits})
    print(f"\nFrom {args.results}; commits: {', '.join(commits) or 'none'}.")


if __name__ == "__main__":
    main()
