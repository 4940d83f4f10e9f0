"""The read-only status page at `/` (stub: the status-page helper fills it in)."""

from __future__ import annotations

import redis

from scheduler.config import Config


def render_page(config: Config, client: redis.Redis, now_s: float) -> str:
    return "<!doctype html><title>scheduler</title>"
