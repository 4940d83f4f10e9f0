"""URL handling: Sentinel URLs, kombu's spelling of them, same-server checks, redaction."""

from __future__ import annotations

import pytest

from scheduler.connections import (
    SentinelTarget,
    kombu_broker,
    redact_url,
    same_redis,
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
