"""Redis clients for the lease and the claims: short timeouts, no hidden retries.

redis-py retries failed commands by default; a retried lease renewal could land after the
node already gave up its lease, so the node enforces its own deadline and retries nothing.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import SplitResult, quote, unquote, urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Socket timeouts in seconds; the lease path needs them well under the lease TTL."""

    connect_s: float = 0.5
    read_s: float = 0.5


SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    """A `redis+sentinel://[user:password@]h1:26379,h2:26379/<master>/<db>` URL, read."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int
    username: str | None
    password: str | None
    tls: bool

    @classmethod
    def parse(cls, url: str) -> SentinelTarget:
        scheme, _, rest = url.partition("://")
        netloc, _, path = rest.partition("/")
        credentials, _, hosts = netloc.rpartition("@")
        username, _, password = credentials.partition(":")
        master, _, db = path.partition("?")[0].partition("/")
        sentinels = []
        for host in hosts.split(","):
            name, _, port = host.rpartition(":")
            if not name or not port.isdigit():
                raise ValueError(f"sentinel address {host!r} is not host:port")
            sentinels.append((name, int(port)))
        if not master:
            raise ValueError("a sentinel URL names the master: redis+sentinel://h:26379/mymaster/0")
        return cls(
            tuple(sentinels),
            master,
            int(db or 0),
            unquote(username) or None,
            unquote(password) or None,
            scheme.startswith("rediss"),
        )


def is_sentinel(url: str) -> bool:
    return url.split("://", 1)[0] in SENTINEL_SCHEMES


def redis_client(url: str, timeouts: Timeouts = Timeouts()) -> redis.Redis:
    """A client that fails fast: one attempt per command, bounded by `timeouts`.

    With a Sentinel URL the client asks the sentinels for the current master on every new
    connection, so after a promotion the next command reaches the new master.
    """
    options: dict[str, Any] = {
        "socket_connect_timeout": timeouts.connect_s,
        "socket_timeout": timeouts.read_s,
        "retry": Retry(NoBackoff(), 0),
        "retry_on_timeout": False,
        "health_check_interval": 0,
        "decode_responses": False,
    }
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **options)
    target = SentinelTarget.parse(url)
    sentinel_options = {
        "socket_connect_timeout": timeouts.connect_s,
        "socket_timeout": timeouts.read_s,
    }
    sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_options)  # type: ignore[no-untyped-call]
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        target.master,
        db=target.db,
        username=target.username,
        password=target.password,
        ssl=target.tls,
        **options,
    )
    return client


def kombu_broker(url: str, transport_options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The broker URL and transport options in kombu's spelling (Sentinel differs)."""
    if not is_sentinel(url):
        return url, transport_options
    target = SentinelTarget.parse(url)
    auth = ""
    if target.password:
        auth = f"{quote(target.username or '', safe='')}:{quote(target.password, safe='')}@"
    scheme = "sentinel"
    hosts = ";".join(
        f"{scheme}://{auth}{host}:{port}/{target.db}" for host, port in target.sentinels
    )
    options = {"master_name": target.master, **transport_options}
    return hosts, options


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, fit for logs, status and errors."""
    if is_sentinel(url):
        scheme, _, rest = url.partition("://")
        credentials, at, _ = rest.partition("/")[0].rpartition("@")
        if not at or ":" not in credentials:
            return url
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{rest.split('@', 1)[1]}"
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
    scheme, _, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    credentials, at, hosts = netloc.rpartition("@")
    user = credentials.split(":", 1)[0] if at else ""
    return f"{scheme}://{user}:{quote(password, safe='')}@{hosts}{slash}{path}"


def same_redis(url_a: str, url_b: str) -> bool:
    """Whether two redis:// URLs name the same server and database (so one script spans both)."""
    if is_sentinel(url_a) or is_sentinel(url_b):
        if not (is_sentinel(url_a) and is_sentinel(url_b)):
            return False
        a_target, b_target = SentinelTarget.parse(url_a), SentinelTarget.parse(url_b)
        return (sorted(a_target.sentinels), a_target.master, a_target.db) == (
            sorted(b_target.sentinels),
            b_target.master,
            b_target.db,
        )
    a, b = urlsplit(url_a), urlsplit(url_b)
    if a.scheme not in ("redis", "rediss") or a.scheme != b.scheme:
        return False

    def where(parts: SplitResult) -> tuple[str, int, str]:
        host = parts.hostname or "localhost"
        host = "127.0.0.1" if host == "localhost" else host
        return host, parts.port or 6379, (parts.path.strip("/") or "0")

    return where(a) == where(b)


@cache
def tzdata_version() -> str:
    try:
        return importlib.metadata.version("tzdata")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
