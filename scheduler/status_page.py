"""The read-only status page at `/` of the node's HTTP listener: the leader, the nodes and the
jobs table of `jobs list`, as one self-refreshing HTML document with no external assets.

It reads Redis with the readers `scheduler status` and `scheduler jobs list` use and builds the
same records and rows; only the HTML is its own. Everything shown may have been written to
Redis by anyone, so every value goes through `views.cell` (short, printable) and `html.escape`.
A value that cannot be read is an "unreadable" line; Redis being unreachable is a page saying so.
"""

from __future__ import annotations

import html
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import redis

from scheduler.cli.listing import read_facts
from scheduler.config import Config
from scheduler.connections import redact_url
from scheduler.describe import duration_words
from scheduler.errors import SchedulerError
from scheduler.listing import JobFacts, human_row, job_rows
from scheduler.runtime import all_jobs
from scheduler.status_source import read_status_record
from scheduler.store.failures import redis_errors
from scheduler.store.keys import Keys
from scheduler.store.runtime import load_runtime_jobs
from scheduler.store.state import StateStore
from scheduler.views import cell, printable, unreadable_lines

log = logging.getLogger(__name__)

# The page reloads itself this often (seconds)...
REFRESH_S = 5
# ...or less often when a render takes long (100,000 jobs: about 2 s on one core), so that an
# open page costs the node at most about a tenth of a core, whatever the number of jobs.
_RENDER_SHARE = 0.1
# At most this many job rows: 100,000 jobs must not make a page of megabytes every 5 s.
ROWS_MAX = 500
# At most this many quarantined jobs and open alerts are listed above the tables.
NOTICES_MAX = 50

_JOB_COLUMNS = [
    "name", "schedule", "tz", "next", "left", "last", "passed", "outcome", "paused", "source",
]  # fmt: skip
_NODE_COLUMNS = [
    "node_id", "host", "pid", "version", "role", "clock_offset_ms", "clock_ok", "config_hash",
    "seen_ago_s", "restart_needed",
]  # fmt: skip

# Rows with these outcomes are coloured (as `jobs list` colours them on a terminal).
_ROW_CLASSES = ("failed", "missed")

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; } th, td { padding: 2px 10px; text-align: left; }
th { border-bottom: 1px solid #999; } tr:nth-child(even) td { background: #f4f4f4; }
td { font-family: ui-monospace, monospace; white-space: nowrap; }
.failed td, .bad { color: #b00; } .missed td { color: #a60; }
.notice { color: #b00; font-weight: bold; } .unreadable { color: #a60; }
.muted { color: #777; }
"""


def render_page(config: Config, client: redis.Redis, now_s: float) -> str:
    """The whole page, as of `now_s` (epoch seconds); never raises."""
    started = time.perf_counter()
    settings = config.scheduler
    try:
        body = _read_and_render(config, StateStore(client, Keys(settings.namespace)), now_s)
    except SchedulerError as exc:
        body = unreachable_html(redact_url(settings.redis_url), str(exc))
    except Exception as exc:  # a page must never take the listener down; the log has the rest
        log.exception("the status page could not be rendered")
        body = f'<p class="notice">The page could not be rendered: {_e(type(exc).__name__)}.</p>'
    return document(settings.namespace, now_s, body, time.perf_counter() - started)


def _read_and_render(config: Config, store: StateStore, now_s: float) -> str:
    """Read what `status` and `jobs list` read, then render it; raises SchedulerError when
    Redis cannot be reached."""
    with redis_errors("reaching Redis"):
        store.client.ping()
    record = read_status_record(config, store)
    runtime = load_runtime_jobs(store, store.keys, config)
    jobs = all_jobs(config, runtime.jobs)
    # The order of `jobs list` depends on the next runs only, so the facts (five reads per
    # thousand names) are read for the rows shown, not for all 100,000 jobs.
    order = job_rows(jobs, now_s, JobFacts())
    shown = [row["name"] for row in order[:ROWS_MAX]]
    facts = read_facts(store, shown)
    rows = job_rows({name: jobs[name] for name in shown}, now_s, facts)
    problems = [f"runtime job skipped: {problem}" for problem in runtime.problems]
    return "\n".join(
        [
            status_html(record, now_s),
            jobs_html(rows, len(jobs)),
            lines_html([*problems, *unreadable_lines([*record["unreadable"], *facts.unreadable])]),
        ]
    )


# -- pure rendering ---------------------------------------------------------------------------


def _e(value: object) -> str:
    """Any value read from anywhere as one safe HTML table cell: short, printable, escaped."""
    return html.escape(cell(value))


def _line(text: str) -> str:
    """A whole line (a warning, an unreadable value) as safe HTML text: printable, escaped."""
    return html.escape(printable(text))


def document(namespace: str, now_s: float, body: str, took_s: float) -> str:
    """The HTML document around `body`, reloading itself every REFRESH_S seconds (longer
    when rendering took `took_s` long)."""
    refresh_s = max(REFRESH_S, math.ceil(took_s / _RENDER_SHARE))
    at = datetime.fromtimestamp(now_s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="refresh" content="{refresh_s}">\n'
        f"<title>scheduler {_e(namespace)}</title>\n<style>{_STYLE}</style></head>\n"
        f"<body>\n<h1>scheduler · namespace {_e(namespace)}</h1>\n"
        f'<p class="muted">As of {at}; refreshes every {refresh_s} s. Read-only.</p>\n'
        f"{body}\n"
        f'<p class="muted">Rendered in {took_s * 1000:.0f} ms.</p>\n</body></html>\n'
    )


def unreachable_html(where: str, error: str) -> str:
    return (
        f'<p class="notice">Cannot reach Redis at {_line(where)}: {_line(error)}</p>\n'
        "<p>Leader, nodes and jobs are unknown until it answers; this page retries on its "
        "next refresh.</p>"
    )


def status_html(record: Mapping[str, Any], now_s: float) -> str:
    """The leader, what needs an operator's eye, and the nodes: `scheduler status`'s record."""
    nodes = record["nodes"]
    parts = ['<h2>Leader</h2>\n<p id="leader">']
    if record["leader"] is None:
        parts.append('<span class="notice">No node holds the lease.</span>')
    else:
        lead: Mapping[str, Any] = next(
            (n for n in nodes if n.get("node_id") == record["leader"]), {}
        )
        started = lead.get("started_at")
        up = (
            f" · up {_e(duration_words(now_s - started))}"
            if isinstance(started, int | float) and 0 <= now_s - started < 1e9
            else ""
        )
        left = record["lease_left_ms"]
        parts.append(
            f"<b>{_e(record['leader'])}</b> · fencing token {_e(record['fencing_token'])} · "
            f"lease left {_e(left)} ms{up}"
        )
    parts.append("</p>")
    parts.append(notices_html(record))
    parts.append(f"<h2>Nodes ({len(nodes)} seen in the last 10 s)</h2>")
    rows = [
        {
            **node,
            "role": "leader" if node.get("node_id") == record["leader"] else "standby",
            "restart_needed": _keys_text(node.get("restart_needed")),
        }
        for node in nodes
    ]
    parts.append(table_html(rows, _NODE_COLUMNS, "nodes"))
    return "\n".join(parts)


def _keys_text(value: Any) -> Any:
    """restart_needed's key names as one cell ("-" when none); anything else as it is."""
    if isinstance(value, list):
        return ", ".join(cell(key) for key in value) or None
    return value


def notices_html(record: Mapping[str, Any]) -> str:
    """Warnings, lost state, a filling outbox, quarantined jobs and open alerts."""
    notices = [str(w) for w in record["warnings"]]
    if record["state_lost"] is not None:
        notices.append(f"STATE LOST: Redis lost its data; noticed {cell(record['state_lost'])}")
    outbox = record["outbox"]
    if outbox["full"]:
        notices.append(f"outbox FULL ({outbox['pending']} of {outbox['max']}): slots are missed")
    quarantined, alerts = record["quarantined"], record["alerts"]
    for job, found in sorted(quarantined.items())[:NOTICES_MAX]:
        notices.append(
            f"QUARANTINED: {cell(job)}: key {cell(found.get('key'))} holds "
            f"{cell(found.get('found'))} (not fired until it is fixed)"
        )
    for job, alert in sorted(alerts.items())[:NOTICES_MAX]:
        notices.append(f"ALERT: job {cell(job)}: {cell(alert.get('reason'))}")
    for what, count in (("quarantined jobs", len(quarantined)), ("open alerts", len(alerts))):
        if count > NOTICES_MAX:
            notices.append(f"and {count - NOTICES_MAX} more {what} (scheduler status)")
    return lines_html(notices, "notice")


def jobs_html(rows: Sequence[Mapping[str, Any]], total: int) -> str:
    """`jobs list`'s table (rows as `listing.job_rows` builds them, sorted), with "and N more"
    when `total` jobs do not all fit."""
    columns = list(_JOB_COLUMNS)
    columns += [extra for extra in ("alert", "quarantined") if any(row[extra] for row in rows)]
    parts = [f"<h2>Jobs ({total}, soonest next run first)</h2>"]
    parts.append(table_html([human_row(row) for row in rows], columns, "jobs", "outcome"))
    if total > len(rows):
        parts.append(f"<p>and {total - len(rows)} more (scheduler jobs list)</p>")
    return "\n".join(parts)


def table_html(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], name: str, class_by: str = ""
) -> str:
    """A table with a header; None shows as "-"; a row whose `class_by` value is one of
    _ROW_CLASSES has it as its class."""
    head = "".join(f"<th>{_e(column.upper().replace('_', ' '))}</th>" for column in columns)
    body = []
    for row in rows:
        kind = row.get(class_by) if class_by else None
        attribute = f' class="{kind}"' if kind in _ROW_CLASSES else ""
        cells = "".join(f"<td>{_e(row.get(column))}</td>" for column in columns)
        body.append(f"<tr{attribute}>{cells}</tr>")
    return f'<table id="{name}">\n<tr>{head}</tr>\n' + "\n".join(body) + "\n</table>"


def lines_html(lines: Iterable[str], kind: str = "unreadable") -> str:
    """Lines as a list of class `kind` (nothing when there are none): what could not be read,
    as `status` and `jobs list` print it, or what needs an operator's eye."""
    items = "".join(f"<li>{_line(line)}</li>\n" for line in lines)
    return f'<ul class="{kind}">\n{items}</ul>' if items else ""
