"""Jitter: a job's fire is sent a little after its slot, by an amount every node agrees on.

The delay of (job, slot) is a pure function of the job's name and the slot: the SHA-256 of
both, scaled into ``[0, window)`` whole seconds, where the window is the job's jitter and never
reaches its next slot (so fires of one job never swap order and never bunch up). A new leader
therefore sends a pending slot at the very instant the old one would have. The slot itself
(task id, ``scheduler_slot``, watermark, history) stays the nominal one: only the send moves.
"""

from __future__ import annotations

import hashlib


def jitter_s(job: str, slot_s: int, jitter_max_s: int, next_slot_s: int | None) -> int:
    """Whole seconds after `slot_s` to send the fire of `job`: in [0, jitter_max_s), and
    smaller than the gap to `next_slot_s` (None: the job has no later slot)."""
    window = jitter_max_s if next_slot_s is None else min(jitter_max_s, next_slot_s - slot_s)
    if window <= 1:
        return 0
    digest = hashlib.sha256(f"{job}\x00{slot_s}".encode()).digest()
    # 64 bits of the hash times the window, in integers: the same on every platform.
    return (int.from_bytes(digest[:8], "big") * window) >> 64
