"""The status page of a running node (`scheduler run` with `http_listen`), loaded in a real
headless Chromium: the DOM shows the leader, the fired job's row and the self-refresh."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from scheduler.lease import read_holder
from scheduler.store.keys import Keys
from tests.conftest import RedisServer, free_port, missing_server
from tests.integration.harness import Children, Cluster, every_second, wait_for_outcome

NAMESPACE = "web-page"
QUEUE = "web-page"
JOB = "page.ping"
CHROMIUM_TIMEOUT_S = 30.0


class Dom(HTMLParser):
    """What Chromium's serialised DOM shows: every <meta>, the text of each element with an
    id, and the cells of each row of each table."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.metas: list[dict[str, str | None]] = []
        self.text_of: dict[str, str] = {}
        self.rows_of: dict[str, list[list[str]]] = {}
        self._open: list[tuple[str, str]] = []  # (tag, id) of the open elements with an id
        self._table = ""
        self._cell: list[str] | None = None
        self.feed(dom)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        element = found.get("id") or ""
        if tag == "meta":
            self.metas.append(found)
        elif tag == "table":
            self._table = element
            self.rows_of[element] = []
        elif tag == "tr":
            self.rows_of[self._table].append([])
        elif tag == "td":
            self._cell = []
        if element:
            self.text_of[element] = ""
            self._open.append((tag, element))

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows_of[self._table][-1].append("".join(self._cell))
            self._cell = None
        if self._open and self._open[-1][0] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for _, element in self._open:
            self.text_of[element] += data
        if self._cell is not None:
            self._cell.append(data)

    def rows(self, table: str) -> dict[str, list[str]]:
        """The body rows of `table` by their first cell."""
        return {cells[0]: cells for cells in self.rows_of[table] if cells}


def dump_dom(url: str) -> str:
    """The page at `url` as headless Chromium has parsed and laid it out."""
    binary = shutil.which("chromium")
    if binary is None:
        missing_server("chromium (Debian's package; `make install` installs it)")
    done = subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", url],
        check=False,
        capture_output=True,
        text=True,
        timeout=CHROMIUM_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_running_node_shows_its_page_in_chromium(
    children: Children, redis_server: RedisServer, tmp_path: Path
) -> None:
    port = free_port()
    cluster = Cluster(children, tmp_path / "scheduler.toml", redis_server.url)
    cluster.configure(
        namespace=NAMESPACE,
        jobs={JOB: every_second(queue=QUEUE)},
        extra_settings={"http_listen": f"127.0.0.1:{port}"},
    )
    worker = cluster.start_worker(QUEUE)
    cluster.start_node("web-1")
    cluster.wait_worker_ready(worker)
    wait_for_outcome(cluster.state(), NAMESPACE, JOB, "succeeded", timeout_s=30)
    assert cluster.state().hget(Keys(NAMESPACE).last_fire, JOB) is not None
    holder = read_holder(cluster.state(), Keys(NAMESPACE))
    assert holder is not None
    assert holder.node_id == "web-1"

    dom = Dom(dump_dom(f"http://127.0.0.1:{port}/"))

    assert {"http-equiv": "refresh", "content": "5"} in dom.metas
    leader = f"web-1 · fencing token {holder.token} · lease left "
    assert dom.text_of["leader"].strip().startswith(leader)
    jobs = dom.rows("jobs")
    assert list(jobs) == [JOB]
    _, schedule, zone, _, left, last, passed, outcome, paused, source = jobs[JOB]
    assert (schedule, zone, paused, source) == ("Every second (1s)", "UTC", "no", "config")
    # The worker may have received the next second's fire already ("running").
    assert outcome in ("succeeded", "running")
    assert left in ("now", "in 1 s")
    assert last.endswith(" UTC")
    assert passed == "just now" or passed.endswith(" s ago")
    nodes = dom.rows("nodes")
    assert list(nodes) == ["web-1"]
    assert nodes["web-1"][4] == "leader"  # ROLE
