"""TOML text for imported jobs, written by hand because the output carries comments.

rtoml and tomllib can write or read values but not comments, and an import's comments (what
was renamed, what differs, what was left out) are half its value. Only what an import
produces is written: strings, integers, finite floats, booleans, lists and tables.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# TOML basic strings may hold any character but these; each has a short escape or \uXXXX.
_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


@dataclass(frozen=True, slots=True)
class ImportedJob:
    """One ``[jobs.NAME]`` table: its keys in the order written, and comments above it."""

    name: str
    keys: tuple[tuple[str, Any], ...]
    comments: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an importer made of its input.

    ``notes`` become comment lines of the output (what was left out, and why); ``problems``
    are the same facts as one line each for stderr.
    """

    jobs: tuple[ImportedJob, ...] = ()
    notes: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default=())


class NotTomlValue(ValueError):
    """A value TOML cannot hold (None, nan, a set, an object): says which and where."""


def toml_string(text: str) -> str:
    out = []
    for char in text:
        escaped = _SHORT_ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif char < " " or char == "\x7f":
            out.append(f"\\u{ord(char):04x}")
        elif 0xD800 <= ord(char) <= 0xDFFF:
            raise NotTomlValue(f"a lone surrogate {char!r} is not text")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else toml_string(key)


def toml_value(value: Any, where: str = "value") -> str:
    """``value`` as TOML inline text; NotTomlValue names ``where`` inside it a value fails."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotTomlValue(f"{where} is {value!r}, which a job cannot carry")
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, Mapping):
        parts = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotTomlValue(f"{where} has a key {key!r} that is not a string")
            parts.append(f"{toml_key(key)} = {toml_value(item, f'{where}.{key}')}")
        return "{ " + ", ".join(parts) + " }" if parts else "{}"
    if isinstance(value, list | tuple):
        items = [toml_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return "[" + ", ".join(items) + "]"
    if value is None:
        raise NotTomlValue(f"{where} is None, which TOML cannot write")
    raise NotTomlValue(f"{where} is a {type(value).__name__}, not JSON-like data: {value!r}")


def comment_lines(lines: Sequence[str]) -> list[str]:
    """Each line as a TOML comment (a line break inside one starts another comment)."""
    return [f"# {part}".rstrip() for line in lines for part in line.splitlines() or [""]]


def render(result: ImportResult, header: Sequence[str] = ()) -> str:
    """The whole output: header comments, notes, then one table per job."""
    blocks = []
    top = comment_lines([*header, *result.notes])
    if top:
        blocks.append("\n".join(top))
    for job in result.jobs:
        lines = comment_lines(job.comments)
        lines.append(f"[jobs.{toml_key(job.name)}]")
        lines.extend(f"{toml_key(key)} = {toml_value(value, key)}" for key, value in job.keys)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
