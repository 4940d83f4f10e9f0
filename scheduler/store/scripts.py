"""The Lua scripts in lua/, read once per process and registered per client."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import redis
from redis.commands.core import Script


@cache
def script_text(name: str) -> str:
    return (files("scheduler.store") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


def register(client: redis.Redis, name: str) -> Script:
    """EVALSHA with a transparent reload after NOSCRIPT (e.g. a restarted Redis)."""
    return client.register_script(script_text(name))
