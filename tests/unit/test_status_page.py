"""The status page's HTML: hostile values from Redis escaped, the jobs table bounded and in the
order of `jobs list`, garbage shown as unreadable lines, an unreachable Redis said plainly."""

from __future__ import annotations

import json
import time
from html.parser import HTMLParser
from pathlib import Path

import redis

from scheduler.config import Config, load_config
from scheduler.connections import redis_client
from scheduler.listing import JobFacts, job_rows
from scheduler.runtime import all_jobs
from scheduler.status_page import ROWS_MAX, document, render_page
from scheduler.store.keys import Keys
from tests.configs import config_file
from tests.conftest import RedisServer, free_port

NOW_S = 1_767_225_720.0  # 2026-01-01T00:02:00Z
# Every tag the page itself writes; anything else in a page came from the data, unescaped.
PAGE_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "span", "b",
    "table", "tr", "th", "td", "ul", "li",
}  # fmt: skip


class Page(HTMLParser):
    """A rendered page as a browser parses it: its tags, attributes, text and table cells."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.chunks: list[str] = []
        # table id -> its body rows: (the row's class, its cells' text)
        self.tables: dict[str, list[tuple[str | None, list[str]]]] = {}
        self._table: list[tuple[str | None, list[str]]] = []
        self._in_cell = False
        self.feed(page)
        self.close()
        self.text = "".join(self.chunks)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)
        if tag == "table":
            self._table = self.tables.setdefault(dict(attrs).get("id") or "", [])
        elif tag == "tr":
            self._table.append((dict(attrs).get("class"), []))
        elif tag == "td":
            self._table[-1][1].append("")
            self._in_cell = True

    def handle_endtag(self, tag: str) -> None:
        self._in_cell = self._in_cell and tag != "td"

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)
        if self._in_cell:
            self._table[-1][1][-1] += data

    def names(self, table: str) -> list[str]:
        """The first cell of every body row of `table`."""
        return [cells[0] for _, cells in self.tables[table] if cells]


def _config(directory: Path, url: str, jobs: str = "") -> Config:
    text = f'[scheduler]\nredis_url = "{url}"\nnamespace = "pg"\ntimezone = "UTC"\n\n{jobs}'
    return load_config(config_file(directory, text))


def _jobs(count: int) -> str:
    return "".join(f'[jobs.j{i}]\ntask = "t"\nevery = "{i + 1}m"\n\n' for i in range(count))


def test_hostile_values_from_redis_are_escaped(redis_server: RedisServer, tmp_path: Path) -> None:
    config = _config(tmp_path, redis_server.url, '[jobs.ping]\ntask = "t"\nevery = "1m"\n')
    client, keys = redis_server.client(), Keys("pg")
    node = "<img src=x onerror=alert(1)>"
    client.set(keys.lease, "7 n0nce <script>alert('lease')</script>", px=10_000)
    client.hset(keys.nodes, node, json.dumps({
        "node_id": node, "host": "</td></tr></table><script>h</script>", "version": "\x1b[31m",
        "seen_at": time.time(), "config_hash": '"><svg onload=x>',
        "restart_needed": ["<b>lease_ttl</b>"], "pid": "\ud800",
    }))  # fmt: skip
    client.hset(keys.last_fire, "ping", f"{int(NOW_S) - 60} 7")
    client.hset(keys.outcomes, "ping", json.dumps({"outcome": "<script>o</script>"}))
    client.hset(keys.alerts, "ping", json.dumps({"since": NOW_S, "reason": "<i>late</i>"}))

    page = render_page(config, client, NOW_S)

    parsed = Page(page)
    assert parsed.tags <= PAGE_TAGS
    assert not {name for name in parsed.attributes if name.startswith("on")}
    for shown in (
        "<script>alert('lease')</script> · fencing token 7",
        node, "</td></tr></table><script>h</script>", "\\x1b[31m", '"><svg onload=x>',
        "<b>lease_ttl</b>", "<script>o</script>", "ALERT: job ping: <i>late</i>",
    ):  # fmt: skip
        assert shown in parsed.text
    assert "&lt;script&gt;alert(&#x27;lease&#x27;)&lt;/script&gt;" in page
    assert "\x1b" not in page
    page.encode("utf-8")  # a lone surrogate from Redis is escaped, the server can send it


def test_jobs_are_bounded_in_the_order_of_jobs_list(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    config = _config(tmp_path, redis_server.url, _jobs(ROWS_MAX + 100))
    order = [row["name"] for row in job_rows(all_jobs(config, {}), NOW_S, JobFacts())]
    soonest = order[0]
    redis_server.client().hset(Keys("pg").last_fire, soonest, f"{int(NOW_S) - 60} 7")
    redis_server.client().hset(Keys("pg").outcomes, soonest, json.dumps({"outcome": "failed"}))

    page = render_page(config, redis_server.client(), NOW_S)

    parsed = Page(page)
    assert parsed.names("jobs") == order[:ROWS_MAX]
    assert "and 100 more (scheduler jobs list)" in parsed.text
    assert f"Jobs ({ROWS_MAX + 100}, soonest next run first)" in parsed.text
    # The facts are read for the shown rows: the soonest job's last run and outcome.
    assert parsed.tables["jobs"][1] == ("failed", [
        soonest, "Every minute (1m)", "UTC", "Thu 2026-01-01 00:03:00 UTC", "in 1 min",
        "Thu 2026-01-01 00:01:00 UTC", "1 min ago", "failed", "no", "config",
    ])  # fmt: skip


def test_garbage_in_redis_is_an_unreadable_line(redis_server: RedisServer, tmp_path: Path) -> None:
    config = _config(tmp_path, redis_server.url, '[jobs.ping]\ntask = "t"\nevery = "1m"\n')
    client, keys = redis_server.client(), Keys("pg")
    client.hset(keys.nodes, "n1", b"\xff not json")
    client.hset(keys.last_fire, "ping", "yesterday")
    client.set(keys.paused, "not a set")
    client.set(keys.lease, "garbage")

    parsed = Page(render_page(config, client, NOW_S))

    assert "No node holds the lease." in parsed.text
    for line in (
        "unreadable: pg:nodes field n1 holds '\\xff not json', not JSON",
        "unreadable: pg:last_fire field ping holds 'yesterday', not \"<slot> <token>\"",
        "unreadable: pg:paused holds a string, not a set",
    ):
        assert line in parsed.text
    assert "could not be rendered" not in parsed.text
    assert parsed.names("jobs") == ["ping"]


def test_unreachable_redis_is_a_page_that_says_so(tmp_path: Path) -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    config = _config(tmp_path, url)
    client: redis.Redis = redis_client(url)

    page = render_page(config, client, NOW_S)

    parsed = Page(page)
    assert f"Cannot reach Redis at redis://:***@127.0.0.1:{url.split(':')[3]}" in parsed.text
    assert "s3cret" not in page
    assert '<meta http-equiv="refresh" content="5">' in page


def test_a_slow_render_refreshes_less_often() -> None:
    assert '<meta http-equiv="refresh" content="5">' in document("pg", NOW_S, "", 0.2)
    assert '<meta http-equiv="refresh" content="21">' in document("pg", NOW_S, "", 2.05)


def test_ten_thousand_jobs_render_well_within_a_refresh(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    # About 0.2 s on one core of the development machine; the bound catches an accident (the
    # facts read for every job, a quadratic sort), not a few percent.
    config = _config(tmp_path, redis_server.url, _jobs(10_000))
    client = redis_server.client()
    started = time.perf_counter()
    page = render_page(config, client, NOW_S)
    assert time.perf_counter() - started < 2.0
    assert "and 9500 more (scheduler jobs list)" in Page(page).text
