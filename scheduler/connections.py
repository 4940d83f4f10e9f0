"""Redis clients for the lease and the claims: short timeouts, no hidden retries.

redis-py retries failed commands by default; a retried lease renewal could land after the
node already gave up its lease, so the node enforces its own deadline and retries nothing.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Socket timeouts in seconds; the lease path needs them well under the lease TTL."""

    connect_s: float = 0.5
    read_s: float = 0.5


def redis_client(url: str, timeouts: Timeouts = Timeouts()) -> redis.Redis:
    """A client that fails fast: one attempt per command, bounded by `timeouts`."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=timeouts.connect_s,
        socket_timeout=timeouts.read_s,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
        health_check_interval=0,
        decode_responses=False,
    )


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, fit for logs, status and errors."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def with_password(url: str, password: str) -> str:
    """The URL with `password` set (the user name, if any, kept: Redis 6 ACL users)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = quote(parts.username or "", safe="")
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}"))


def same_redis(url_a: str, url_b: str) -> bool:
    """Whether two redis:// URLs name the same server and database (so one script spans both)."""
    a, b = urlsplit(url_a), urlsplit(url_b)
    if a.scheme not in ("redis", "rediss") or a.scheme != b.scheme:
        return False

    def where(parts: SplitResult) -> tuple[str, int, str]:
        host = parts.hostname or "localhost"
        host = "127.0.0.1" if host == "localhost" else host
        return host, parts.port or 6379, (parts.path.strip("/") or "0")

    return where(a) == where(b)


def tzdata_version() -> str:
    try:
        return importlib.metadata.version("tzdata")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
