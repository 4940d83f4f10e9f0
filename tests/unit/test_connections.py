"""URL handling: Sentinel URLs, kombu's spelling of them, same-server checks, redaction."""

from __future__ import annotations

import ssl
from urllib.parse import quote

import kombu.exceptions
import pytest
import redis
from kombu import Connection

from jobs.app import create_app
from jobs.settings import WorkerSettings
from scheduler.connections import (
    SentinelTarget,
    Timeouts,
    check_url,
    is_sentinel,
    kombu_broker,
    redact_url,
    redis_client,
    same_redis,
    tls_options,
    with_password,
)

SENTINEL = "redis+sentinel://app:pw@10.0.0.1:26379,10.0.0.2:26380/mymaster/2"


def test_sentinel_url_is_read() -> None:
    assert SentinelTarget.parse(SENTINEL) == SentinelTarget(
        (("10.0.0.1", 26379), ("10.0.0.2", 26380)), "mymaster", 2, "app", "pw", tls=False
    )
    assert SentinelTarget.parse("rediss+sentinel://h:1/m").tls


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://h:26379", "a sentinel URL names the master"),
        ("redis+sentinel://h/m/0", "sentinel address 'h' is not host:port"),
    ],
)
def test_bad_sentinel_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SentinelTarget.parse(url)


def test_kombu_spelling_of_a_sentinel_broker() -> None:
    url, options = kombu_broker(SENTINEL, {"visibility_timeout": 60})
    assert url == "sentinel://app:pw@10.0.0.1:26379/2;sentinel://app:pw@10.0.0.2:26380/2"
    assert options == {"master_name": "mymaster", "visibility_timeout": 60}
    assert kombu_broker("amqp://h//", {}) == ("amqp://h//", {})


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("redis://127.0.0.1:6379/0", "redis://localhost/0", True),
        ("redis://h:6379/0", "redis://h:6379/1", False),
        ("redis://h:6379/0", "amqp://h:5672//", False),
        ("redis://:pw@h:6379/0", "redis://h:6379", True),
        (SENTINEL, "redis+sentinel://10.0.0.2:26380,10.0.0.1:26379/mymaster/2", True),
        (SENTINEL, "redis+sentinel://10.0.0.1:26379/mymaster/2", False),
        (SENTINEL, "redis://10.0.0.1:6379/2", False),
    ],
)
def test_same_redis(a: str, b: str, same: bool) -> None:
    assert same_redis(a, b) is same


def test_redaction_hides_every_password() -> None:
    assert (
        redact_url(SENTINEL) == "redis+sentinel://app:***@10.0.0.1:26379,10.0.0.2:26380/mymaster/2"
    )
    assert redact_url("rediss://u:p@h:6380/0?ssl_cert_reqs=required") == (
        "rediss://u:***@h:6380/0?ssl_cert_reqs=required"
    )
    assert "s3cret" not in redact_url(with_password("redis://h:1/0", "s3cret"))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://h:6379/0", "redis://:p%40ss@h:6379/0"),
        ("redis://app@h:6379/0", "redis://app:p%40ss@h:6379/0"),
        ("redis://app:old@h:6379/0?x=1", "redis://app:p%40ss@h:6379/0?x=1"),
        ("redis+sentinel://a:1,b:2/m/0", "redis+sentinel://:p%40ss@a:1,b:2/m/0"),
    ],
)
def test_with_password(url: str, expected: str) -> None:
    assert with_password(url, "p@ss") == expected


# -- one validator: validate refuses exactly what redis_client or kombu would fail on ------

BAD_URLS = [
    ("redis://[::1", "an IPv6 host is written in brackets: redis://[::1]:6379/0"),
    ("redis://h:99999/0", "port '99999' is not a number 1-65535"),
    ("redis://h:0/0", "port '0' is not a number 1-65535"),
    ("redis://h:x/0", "port 'x' is not a number 1-65535"),
    ("redis://:6379/0", "no host: write redis://host:port/..."),
    ("redis:///0", "no host: write redis://host:port/..."),
    ("redis://h:6379/abc", "database 'abc' is not a number (0, 1, ...)"),
    ("redis://h:6379/-1", "database '-1' is not a number (0, 1, ...)"),
    ("redis://h:6379/0/1", "the path is the database number: redis://host:6379/0"),
    ("redis://h/0?socket_timeout=soon", "Invalid value for 'socket_timeout'"),
    ("rediss://h/0?ssl_cert_reqs=maybe", "ssl_cert_reqs must be none, optional or required, got 'maybe'"),
    ("http://h:80/", "unknown scheme 'http' (use redis, rediss, unix, redis+sentinel, rediss+sentinel)"),
    ("localhost:6379", "expected a URL like redis://host:6379/0 (value not shown)"),
    ("redis+sentinel://h:26379", "a sentinel URL names the master"),
    ("redis+sentinel://h:99999/m/0", "sentinel h: port '99999' is not a number 1-65535"),
    ("redis+sentinel://h:1/m/x", "database 'x' is not a number (0, 1, ...)"),
    ("redis+sentinel://h:1/m/0/9", "a sentinel URL ends in /<master>/<db>"),
    ("redis+sentinel://:1/m/0", "sentinel address ':1' is not host:port"),
]  # fmt: skip


@pytest.mark.parametrize(("url", "message"), BAD_URLS)
def test_check_url_refuses_with_one_line(url: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_url(url)
    assert str(caught.value).startswith(message), str(caught.value)


def _fails_later(url: str) -> bool:
    """Whether the state client, kombu, or a first command would fail on `url` (no server:
    a connection error is not what is asked)."""
    try:
        client = redis_client(url, Timeouts(0.05, 0.05))
        if not is_sentinel(url):
            client.connection_pool.get_connection()
    except redis.ConnectionError:
        return False
    except (ValueError, TypeError, OSError):
        return True
    broker, options = kombu_broker(url, {})
    try:
        connection = Connection(broker, transport_options=options)
        # kombu reads a Sentinel URL when it makes its transport; connecting would wait out
        # its discovery retries.
        _ = connection.transport if is_sentinel(url) else connection.connection
    except (ValueError, TypeError):
        return True
    except (OSError, kombu.exceptions.OperationalError):  # refused: the URL itself was read
        return False
    return False


@pytest.mark.parametrize(
    "url",
    [
        "redis://[::1",
        "redis://h:99999/0",
        "redis://h:x/0",
        "redis://h/0?socket_timeout=soon",
        "redis+sentinel://h:99999/m/0",
        "redis+sentinel://h:1/m/x",
    ],
)
def test_what_check_url_refuses_would_have_crashed(url: str) -> None:
    # ("redis://h/abc" is refused too: kombu fails on it at its first connection, and
    # redis-py quietly uses database 0 instead.)
    assert _fails_later(url)


GOOD_URLS = [
    "redis://127.0.0.1:1/0",
    "redis://[::1]:1/2",
    "redis://localhost",
    "rediss://127.0.0.1:1/0?ssl_cert_reqs=none",
    "redis://app:p%2Fw@127.0.0.1:1/0",
    "redis+sentinel://127.0.0.1:1,[::1]:2/mymaster/3",
]


@pytest.mark.parametrize("url", GOOD_URLS)
def test_what_check_url_accepts_is_read_by_every_client(url: str) -> None:
    check_url(url)
    check_url(url, broker=True)
    assert not _fails_later(url)


def test_the_broker_also_takes_rabbitmq_but_not_a_unix_socket() -> None:
    check_url("amqp://guest:guest@127.0.0.1:5672//", broker=True)
    check_url("unix:///run/redis.sock?db=1")
    with pytest.raises(ValueError, match="unknown scheme 'unix'"):
        check_url("unix:///run/redis.sock", broker=True)
    with pytest.raises(ValueError, match="unknown scheme 'amqp'"):
        check_url("amqp://h//")


# -- redaction never leaks ------------------------------------------------------------------

SECRETS = [f"se{mark}cr3t" for mark in "/#?@:%"] + ["s/e#c?r@e:t%"]
SHAPES = [
    "redis://app:{pw}@h:6380/1",
    "redis://:{pw}@h:6380/1",
    "rediss://app:{pw}@h:6380/1?ssl_cert_reqs=required",
    "redis+sentinel://app:{pw}@10.0.0.1:26379,10.0.0.2:26380/mymaster/2",
    "amqp://guest:{pw}@h:5672//",
    "{pw}",
    "app:{pw}@h:6379",
]


@pytest.mark.parametrize("secret", SECRETS)
@pytest.mark.parametrize("shape", SHAPES)
def test_redaction_never_shows_a_password(shape: str, secret: str) -> None:
    raw = shape.format(pw=secret)
    encoded = shape.format(pw=quote(secret, safe=""))
    for url in (raw, encoded):
        shown = redact_url(url)
        assert "cr3t" not in shown, shown
        assert "se" not in shown.split("@")[0].split("://")[-1].removeprefix("app"), shown


@pytest.mark.parametrize("secret", SECRETS)
def test_check_url_never_shows_a_password(secret: str) -> None:
    said = []
    for shape in SHAPES:
        try:
            check_url(shape.format(pw=secret), broker=True)
        except ValueError as exc:
            said.append(str(exc))
    assert not [line for line in said if "cr3t" in line]


def test_a_password_with_url_punctuation_is_refused_unless_encoded() -> None:
    with pytest.raises(ValueError, match=r"holds an unencoded '/', '\?' or '#'"):
        check_url("redis://app:a/b@h:6379/0")
    check_url(f"redis://app:{quote('a/b#c?d@e', safe='')}@h:6379/0")
    check_url("redis://app:p@ss@h:6379/0")  # '@': every reader splits at the last one


def test_redaction_keeps_what_is_not_secret() -> None:
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"
    assert redact_url("redis://app@h:6379/0") == "redis://app@h:6379/0"
    assert redact_url("redis://app:p/w@h:1/0") == "redis://app:***@h:1/0"
    assert redact_url("redis://h/0?password=zz&db=1") == "redis://h/0?password=***&db=1"
    assert redact_url("localhost") == "<not a URL>"
    joined = "sentinel://u:p1@a:1/0;sentinel://u:p2@b:2/0"
    assert redact_url(joined) == "sentinel://u:***@a:1/0;sentinel://u:***@b:2/0"


# -- TLS verifies certificates unless the URL says ssl_cert_reqs=none ------------------------


def test_the_state_client_verifies_by_default() -> None:
    kwargs = redis_client("rediss://h:6380/0").connection_pool.connection_kwargs
    assert kwargs["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    kwargs = redis_client("rediss://h:6380/0?ssl_cert_reqs=none").connection_pool.connection_kwargs
    assert kwargs["ssl_cert_reqs"] in (ssl.CERT_NONE, "none")  # redis-py reads either
    sentinel = redis_client("rediss+sentinel://h:1/m/0?ssl_ca_certs=/ca.crt")
    kwargs = sentinel.connection_pool.connection_kwargs
    assert (kwargs["ssl_cert_reqs"], kwargs["ssl_ca_certs"]) == (ssl.CERT_REQUIRED, "/ca.crt")


@pytest.mark.parametrize(
    ("url", "reqs"),
    [
        ("rediss://h:6380/0", ssl.CERT_REQUIRED),
        ("rediss://h:6380/0?ssl_ca_certs=/ca.crt", ssl.CERT_REQUIRED),
        ("rediss://h:6380/0?ssl_cert_reqs=optional", ssl.CERT_OPTIONAL),
        ("rediss://h:6380/0?ssl_cert_reqs=none", ssl.CERT_NONE),
        ("rediss+sentinel://h:1,g:2/m/0?ssl_ca_certs=/ca.crt", ssl.CERT_REQUIRED),
        ("rediss+sentinel://h:1/m/0?ssl_cert_reqs=none", ssl.CERT_NONE),
    ],
)
def test_the_broker_verifies_by_default(url: str, reqs: ssl.VerifyMode) -> None:
    broker, _ = kombu_broker(url, {})
    assert Connection(broker).ssl["ssl_cert_reqs"] == reqs
    if "ssl_ca_certs" in url:
        assert Connection(broker).ssl["ssl_ca_certs"] == "/ca.crt"


def test_plain_urls_get_no_tls() -> None:
    assert tls_options("redis://h/0") == {}
    assert kombu_broker("redis://h/0", {}) == ("redis://h/0", {})
    assert not Connection(kombu_broker(SENTINEL, {})[0]).ssl


def _worker_app(url: str):  # type: ignore[no-untyped-def]
    return create_app(WorkerSettings(redis_url=url, broker_url=url, namespace="t"))


def test_the_worker_app_reads_a_tls_sentinel_config() -> None:
    url = "rediss+sentinel://u:p%2Fw@127.0.0.1:1,127.0.0.1:2/m/3?ssl_ca_certs=/ca.crt"
    app = _worker_app(url)
    assert app.conf.broker_url == (
        "sentinel://u:p%2Fw@127.0.0.1:1/3?ssl_cert_reqs=required&ssl_ca_certs=/ca.crt;"
        "sentinel://u:p%2Fw@127.0.0.1:2/3?ssl_cert_reqs=required&ssl_ca_certs=/ca.crt"
    )
    assert app.conf.broker_transport_options == {"master_name": "m"}
    assert app.connection_for_write().ssl == {
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
        "ssl_ca_certs": "/ca.crt",
    }
    backend = app.backend
    assert type(backend).__name__ == "SentinelBackend"
    assert app.conf.result_backend_transport_options == {"master_name": "m"}
    assert [(h["host"], h["port"]) for h in backend.connparams["hosts"]] == [
        ("127.0.0.1", 1),
        ("127.0.0.1", 2),
    ]
    assert (backend.connparams["db"], backend.connparams["password"]) == (3, "p/w")
    assert backend.connparams["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    assert backend.connparams["ssl_ca_certs"] == "/ca.crt"


def test_the_worker_app_verifies_a_rediss_backend_by_default() -> None:
    app = _worker_app("rediss://127.0.0.1:1/0")
    assert app.backend.connparams["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    assert app.connection_for_write().ssl == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    assert (
        _worker_app("rediss://127.0.0.1:1/0?ssl_cert_reqs=none").backend.connparams["ssl_cert_reqs"]
        == ssl.CERT_NONE
    )
