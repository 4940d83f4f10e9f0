"""The Lua scripts in lua/, read once per process and registered per client."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import redis
from redis.commands.core import Script

# A script line that is replaced by the shared opening in lua/fenced.lua.
FENCED_MARK = "--@fenced\n"


@cache
def script_text(name: str) -> str:
    """The script's text, with lua/fenced.lua in place of its `--@fenced` line (Redis has no
    include, and the type-and-lease check must be the same in every script that has it)."""
    text = _read(name)
    if FENCED_MARK in text:
        text = text.replace(FENCED_MARK, _read("fenced"), 1)
    return text


def _read(name: str) -> str:
    return (files("scheduler.store") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


def register(client: redis.Redis, name: str) -> Script:
    """EVALSHA with a transparent reload after NOSCRIPT (e.g. a restarted Redis)."""
    return client.register_script(script_text(name))
