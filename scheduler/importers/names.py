"""Job names for imported entries: valid here (letters, digits, ``_ - .``) and unique."""

from __future__ import annotations

import re

_INVALID_RUN = re.compile(r"[^A-Za-z0-9_.-]+")


def valid_name(text: str, fallback: str = "job") -> str:
    """``text`` with every run of other characters replaced by one ``-``."""
    name = _INVALID_RUN.sub("-", text).strip("-")
    return name or fallback


class NameBook:
    """Hands out names not given before: ``name``, then ``name-2``, ``name-3``..."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def claim(self, wanted: str) -> str:
        name, n = wanted, 1
        while name in self._taken:
            n += 1
            name = f"{wanted}-{n}"
        self._taken.add(name)
        return name
