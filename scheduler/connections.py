"""Redis clients for the lease and the claims: short timeouts, no hidden retries.

redis-py retries failed commands by default; a retried lease renewal could land after the
node already gave up its lease, so the node enforces its own deadline and retries nothing.
"""

from __future__ import annotations

import importlib.metadata
import re
import ssl
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import SplitResult, parse_qs, quote, unquote, urlencode, urlsplit

import redis
import redis.connection
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Socket timeouts in seconds; the lease path needs them well under the lease TTL."""

    connect_s: float = 0.5
    read_s: float = 0.5


SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
TLS_SCHEMES = ("rediss", "rediss+sentinel")
# What the state client (redis-py) serves; the broker adds the transports messages.py knows.
STATE_SCHEMES = ("redis", "rediss", "unix", *SENTINEL_SCHEMES)
BROKER_SCHEMES = ("redis", "rediss", *SENTINEL_SCHEMES, "amqp", "amqps", "pyamqp")
# A user name or password may hold these only percent-encoded: urlsplit, redis-py and kombu
# all end the host part at the first of them, so an unencoded one moves the password into
# the host, port or path (and into error messages).
_ENDS_NETLOC = "/?#"
_CERT_REQS = {
    "none": ssl.CERT_NONE,
    "cert_none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "cert_optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
    "cert_required": ssl.CERT_REQUIRED,
}
_TLS_FILES = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_ca_path")


def _split(url: str) -> tuple[str, str, str]:
    """Scheme, credentials (without the '@') and the rest, splitting at the LAST '@'.

    Splitting there, and not where urlsplit would, keeps an unencoded '/', '#', '?' or '@' of
    a password on the credentials side: a wrong split could only ever show too little.
    """
    scheme, _, rest = url.partition("://")
    credentials, _, after = rest.rpartition("@")
    return scheme, credentials, after


def _query(url: str) -> dict[str, str]:
    after = _split(url)[2]
    return {key: values[-1] for key, values in parse_qs(after.partition("?")[2]).items()}


def _port(text: str, where: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{where}port {text!r} is not a number 1-65535")
    return int(text)


def _db(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"database {text!r} is not a number (0, 1, ...)")
    return int(text)


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
        scheme, credentials, after = _split(url)
        hosts, _, path = after.partition("?")[0].partition("#")[0].partition("/")
        username, _, password = credentials.partition(":")
        master, _, db = path.partition("/")
        sentinels = []
        for host in hosts.split(","):
            name, _, port = host.rpartition(":")
            if name.startswith("[") and name.endswith("]"):
                name = name[1:-1]  # an IPv6 address, as redis-py wants it
            if not name or not port:
                raise ValueError(f"sentinel address {host!r} is not host:port")
            sentinels.append((name, _port(port, f"sentinel {name}: ")))
        if not master:
            raise ValueError("a sentinel URL names the master: redis+sentinel://h:26379/mymaster/0")
        if "/" in db:
            raise ValueError("a sentinel URL ends in /<master>/<db>: redis+sentinel://h:26379/m/0")
        return cls(
            tuple(sentinels),
            unquote(master),
            _db(db or "0"),
            unquote(username) or None,
            unquote(password) or None,
            scheme in TLS_SCHEMES,
        )


def is_sentinel(url: str) -> bool:
    return url.split("://", 1)[0] in SENTINEL_SCHEMES


def check_url(url: str, *, broker: bool = False) -> None:
    """Refuse, with a ValueError naming what is wrong, exactly the URLs the state client
    (redis-py) or the broker (kombu) would fail on later; never quote a password."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        # Not echoed: a value that is not a URL may be a password pasted into the wrong key.
        raise ValueError("expected a URL like redis://host:6379/0 (value not shown)")
    allowed = BROKER_SCHEMES if broker else STATE_SCHEMES
    if scheme not in allowed:
        shown = scheme if scheme.replace("+", "").isalnum() else "?"
        raise ValueError(f"unknown scheme {shown!r} (use {', '.join(allowed)})")
    _, credentials, after = _split(url)
    if any(mark in credentials for mark in _ENDS_NETLOC):
        raise ValueError(
            "the user name or password holds an unencoded '/', '?' or '#': percent-encode "
            "it (%2F, %3F, %23), or set the password with SCHEDULER_REDIS_PASSWORD"
        )
    if is_sentinel(url):
        SentinelTarget.parse(url)
    elif scheme == "unix":
        if not urlsplit(url).path:
            raise ValueError("a unix URL names the socket: unix:///run/redis.sock?db=0")
    else:
        _check_host_url(url, scheme, after)
    tls_options(url)


def _check_host_url(url: str, scheme: str, after: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:  # only "Invalid IPv6 URL"
        raise ValueError("an IPv6 host is written in brackets: redis://[::1]:6379/0") from None
    hostport = after.partition("/")[0].partition("?")[0].partition("#")[0]
    _, colon, port = hostport.rpartition(":")
    if colon and "]" not in port:  # not the inside of an [IPv6] host without a port
        _port(port, "")
    if not parts.hostname:
        raise ValueError(f"no host: write {scheme}://host:port/...")
    if scheme in ("redis", "rediss"):
        path = parts.path.removeprefix("/")
        if "/" in path:
            raise ValueError(f"the path is the database number: {scheme}://host:6379/0")
        _db(path or "0")
        try:  # the query options, read as redis_client will read them
            redis.connection.parse_url(url)  # type: ignore[no-untyped-call]
        except ValueError as exc:
            raise ValueError(str(exc).removesuffix(" in connection URL.")) from None


def tls_options(url: str) -> dict[str, Any]:
    """The TLS settings of a rediss URL, certificates verified unless it says otherwise.

    kombu, given a rediss:// broker without them, connects WITHOUT verifying (one warning);
    every client made here passes these, so only an explicit ssl_cert_reqs=none turns it off.
    """
    if url.split("://", 1)[0] not in TLS_SCHEMES:
        return {}
    query = _query(url)
    reqs = query.get("ssl_cert_reqs", "required")
    if reqs.lower() not in _CERT_REQS:
        raise ValueError(f"ssl_cert_reqs must be none, optional or required, got {reqs!r}")
    options: dict[str, Any] = {"ssl_cert_reqs": _CERT_REQS[reqs.lower()]}
    options.update((key, query[key]) for key in _TLS_FILES if key in query)
    if "ssl_check_hostname" in query:
        options["ssl_check_hostname"] = query["ssl_check_hostname"].lower() not in ("false", "0")
    return options


def _verifying(url: str) -> str:
    """`url` with ssl_cert_reqs spelled out when it is TLS and says nothing (kombu's own
    default is not to verify; Celery's result backend refuses such a URL)."""
    if url.split("://", 1)[0] not in TLS_SCHEMES or "ssl_cert_reqs" in _query(url):
        return url
    head, hash_mark, fragment = url.partition("#")
    joiner = "&" if "?" in _split(head)[2] else "?"
    return f"{head}{joiner}ssl_cert_reqs=required{hash_mark}{fragment}"


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
        **tls_options(url),
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


def _sentinel_chunks(target: SentinelTarget, query: str = "") -> str:
    """kombu's and Celery's spelling of a Sentinel group: `sentinel://h:p/db;sentinel://...`."""
    auth = ""
    if target.password:
        auth = f"{quote(target.username or '', safe='')}:{quote(target.password, safe='')}@"
    elif target.username:
        auth = f"{quote(target.username, safe='')}@"
    suffix = f"?{query}" if query else ""
    return ";".join(
        f"sentinel://{auth}{_host(host)}:{port}/{target.db}{suffix}"
        for host, port in target.sentinels
    )


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _tls_query(url: str) -> str:
    options = tls_options(url)
    if not options:
        return ""
    reqs = {ssl.CERT_NONE: "none", ssl.CERT_OPTIONAL: "optional", ssl.CERT_REQUIRED: "required"}
    pairs = {**options, "ssl_cert_reqs": reqs[options["ssl_cert_reqs"]]}
    return urlencode(
        {
            key: str(value).lower() if isinstance(value, bool) else value
            for key, value in pairs.items()
        },
        safe="/",
    )


def kombu_broker(url: str, transport_options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The broker URL and transport options in kombu's spelling (Sentinel differs), TLS
    verifying unless the URL says ssl_cert_reqs=none."""
    if not is_sentinel(url):
        return _verifying(url), transport_options
    target = SentinelTarget.parse(url)
    options = {"master_name": target.master, **transport_options}
    # kombu reads the ssl_* query of the URL it connects with into Connection(ssl=...).
    return _sentinel_chunks(target, _tls_query(url)), options


@dataclass(frozen=True, slots=True)
class ResultBackend:
    """Celery's spelling of the state Redis as a result backend."""

    url: str
    transport_options: dict[str, Any]
    use_ssl: dict[str, Any]  # redis_backend_use_ssl; empty when the URL carries it


def result_backend(url: str) -> ResultBackend:
    if not is_sentinel(url):
        return ResultBackend(_verifying(url), {}, {})
    target = SentinelTarget.parse(url)
    # Celery's Sentinel backend ignores an ssl_* query; it takes TLS from redis_backend_use_ssl.
    return ResultBackend(_sentinel_chunks(target), {"master_name": target.master}, tls_options(url))


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, fit for logs, status and errors.

    Everything between the scheme and the LAST '@' counts as credentials, and only a user
    name free of URL punctuation is kept: a misread URL shows less, never a password.
    """
    scheme, sep, _ = url.partition("://")
    if not sep:
        return "<not a URL>"
    if ";" in url and url.count("://") > 1:  # kombu's Sentinel list: each its own credentials
        return ";".join(redact_url(chunk) for chunk in url.split(";"))
    _, credentials, after = _split(url)
    after = _QUERY_SECRET.sub(r"\1***", after)
    if "@" not in url:
        return f"{scheme}://{after}"
    user, colon, _ = credentials.partition(":")
    if any(mark in user for mark in _ENDS_NETLOC + "@"):
        shown = "***"
    elif colon:
        shown = f"{user}:***"
    else:
        shown = user
    return f"{scheme}://{shown}@{after}"


# redis-py also reads a password from the query (`?password=...`).
_QUERY_SECRET = re.compile(r"([?&][^=&#]*pass[^=&#]*=)[^&#]*", re.IGNORECASE)


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


def listen_address(text: str) -> tuple[str, int]:
    """`http_listen` as (host, port): "127.0.0.1:9464", "[::1]:9464", "0.0.0.0:9464", or a
    bare port meaning loopback. ValueError naming what is wrong."""
    value = text.strip()
    host, sep, port_text = value.rpartition(":")
    if not sep:
        host, port_text = "127.0.0.1", value
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f'expected "host:port" with a port 1-65535, got {text!r}')
    if not host or any(c.isspace() for c in host):
        raise ValueError(f'expected "host:port", got {text!r}')
    return host, int(port_text)


# A broker hiccup (a reset connection, a failover of its own) is retried within the publish:
# reconnect and send again, a bounded few times in about a second. Beyond that the entry stays
# in the outbox and the drain is retried with a growing pause: the outbox is the guarantee,
# this only spares a slot the pause. A repeat sent twice is the same task id (run once).
PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0.0, "interval_step": 0.2, "interval_max": 0.5}
