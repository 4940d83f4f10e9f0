"""Durations as operators write them: seconds, or text like "90s", "5m", "1h30m", "2d"."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache

_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: object) -> timedelta:
    """Read a duration; raise ValueError with a message fit for a config error line."""
    if isinstance(value, bool):
        raise ValueError(f'expected a duration like "30s" or a number of seconds, got {value!r}')
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration must not be negative, got {value!r}")
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise ValueError(f'expected a duration like "30s", got {value!r}')
    return _parse_text(value)


@lru_cache(maxsize=1024)  # a config repeats the same few durations thousands of times
def _parse_text(value: str) -> timedelta:
    text = value.strip().lower().replace(" ", "")
    if not text:
        raise ValueError("empty duration")
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return timedelta(seconds=float(text))
    pos, total_s = 0, 0.0
    for part in _PART.finditer(text):
        if part.start() != pos:
            break
        total_s += float(part.group(1)) * _UNIT_S[part.group(2)]
        pos = part.end()
    if pos != len(text):
        raise ValueError(
            f"invalid duration {value!r}: use a number of seconds or units ms, s, m, h, d, w "
            '(e.g. "90s", "1h30m")'
        )
    return timedelta(seconds=total_s)


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
