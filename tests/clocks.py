"""A clock tests move by hand: wall and monotonic time advance only when told."""

from __future__ import annotations


class ManualClock:
    def __init__(self, wall_s: float = 1_800_000_000.0) -> None:
        self.wall_s = wall_s
        self.mono_s = 100.0

    def time(self) -> float:
        return self.wall_s

    def monotonic(self) -> float:
        return self.mono_s

    def advance(self, seconds: float) -> None:
        self.wall_s += seconds
        self.mono_s += seconds
