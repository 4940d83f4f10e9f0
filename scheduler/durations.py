"""Durations as operators write them: seconds, or text like "90s", "5m", "1h30m", "2d"."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from functools import lru_cache

_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
# Far beyond any lease, grace or interval anyone means, and far inside what timedelta and the
# slot arithmetic (years 1-9999) can hold: a longer value is a typo, not a schedule.
MAX_DURATION = timedelta(days=36_525)
_MAX_TEXT = "100 years (36525d)"


def parse_duration(value: object) -> timedelta:
    """Read a duration; raise ValueError with a message fit for a config error line."""
    if isinstance(value, bool):
        raise ValueError(f'expected a duration like "30s" or a number of seconds, got {value!r}')
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"duration must be a finite number of seconds, got {value!r}")
        if value < 0:
            raise ValueError(f"duration must not be negative, got {value!r}")
        return _bounded(value, value)
    if not isinstance(value, str):
        raise ValueError(f'expected a duration like "30s", got {value!r}')
    return _parse_text(value)


@lru_cache(maxsize=1024)  # a config repeats the same few durations thousands of times
def _parse_text(value: str) -> timedelta:
    text = value.strip().lower().replace(" ", "")
    if not text:
        raise ValueError("empty duration")
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return _bounded(float(text), value)
    pos, total_s = 0, 0.0
    for part in _PART.finditer(text):
        if part.start() != pos:
            break
        total_s += float(part.group(1)) * _UNIT_S[part.group(2)]
        pos = part.end()
    if pos != len(text):
        raise ValueError(
            f"invalid duration {shown(value)}: use a number of seconds or units ms, s, m, h, "
            'd, w (e.g. "90s", "1h30m")'
        )
    return _bounded(total_s, value)


def _bounded(seconds: float, written: object) -> timedelta:
    # Compared as a number first: timedelta itself overflows long before float does.
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"duration {shown(written)} is longer than {_MAX_TEXT}")
    return timedelta(seconds=seconds)


def shown(value: object) -> str:
    """``value`` for a message, cut short: a line must stay readable whatever was written."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}... ({len(str(value))} characters)"


def format_duration(delta: timedelta) -> str:
    """Write a duration back in the shortest exact unit form ("1h30m", "1500ms")."""
    total_ms = round(delta.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    if total_ms % 1000:
        return f"{total_ms}ms"
    rest, parts = total_ms // 1000, []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)
