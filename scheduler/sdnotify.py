"""systemd's notify protocol (sd_notify(3)), and the STATUS= line a node shows there.

One datagram to $NOTIFY_SOCKET per message, no dependency. Each function sends one message
and returns whether it went out; outside systemd (no $NOTIFY_SOCKET) they do nothing and
return False. A failed send never raises: telling systemd is a courtesy, the node's work
goes on without it.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Mapping
from typing import Any


def notify(state: str) -> bool:
    """Send `state` (one or more `KEY=VALUE` lines) to $NOTIFY_SOCKET; False when not run by
    systemd or the send failed."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True


def ready() -> bool:
    """The node has joined (or finished a reload): `systemctl start/reload` may return."""
    return notify("READY=1")


def reloading() -> bool:
    """A reload begins. MONOTONIC_USEC is read from CLOCK_MONOTONIC itself, never from an
    injected clock: systemd compares it with its own CLOCK_MONOTONIC to match this message to
    the reload it asked for (systemd 253+; older ones ignore the field)."""
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return notify(f"RELOADING=1\nMONOTONIC_USEC={usec}")


def stopping() -> bool:
    return notify("STOPPING=1")


def watchdog() -> bool:
    return notify("WATCHDOG=1")


def status(text: str) -> bool:
    """One line for `systemctl status`; newlines would end the field, so they become spaces."""
    return notify("STATUS=" + " ".join(text.splitlines()))


# --- the STATUS= line: what `systemctl status` shows under "Status:" -------------------------


def status_text(record: Mapping[str, Any], holder: str | None) -> str:
    """The status line for a node's heartbeat `record` (scheduler/heartbeat.py), given the
    lease holder's node id (None: nobody holds it). Pure, so it is tested without I/O."""
    if not record.get("clock_ok"):
        offset_s = float(record.get("clock_offset_ms") or 0.0) / 1000
        text = f"clock off Redis TIME by {offset_s:+.1f} s: not leading"
    elif record.get("leader"):
        text = f"leader, {_jobs(record.get('jobs'))}, {_next(record)}"
    elif holder is None or holder == record.get("node_id"):
        text = "standby, no leader"  # between leases (or this node's own lease running out)
    else:
        text = f"standby behind {holder}"
    restart = record.get("restart_needed")
    if restart:
        text += f"; restart needed for: {', '.join(str(key) for key in restart)}"
    return text


def _jobs(count: object) -> str:
    number = count if isinstance(count, int) else 0
    return "1 job" if number == 1 else f"{number} jobs"


def _next(record: Mapping[str, Any]) -> str:
    next_at, seen_at = record.get("next_slot_at"), record.get("seen_at")
    if not isinstance(next_at, int | float) or not isinstance(seen_at, int | float):
        return "nothing due"
    return f"next in {coarse_wait(next_at - seen_at)}"


def coarse_wait(seconds: float) -> str:
    """A wait rounded up, coarser the longer it is (1 s under 10 s, then 10 s, minutes,
    hours, days). Each change costs systemd a STATUS update and a D-Bus signal: a countdown
    changes the line every beat only in its last 10 s, every 10 s before that, and a slot an
    hour away once a minute."""
    if seconds <= 0:
        return "0 s"
    if seconds < 10:
        return f"{math.ceil(seconds)} s"
    if seconds < 60:
        return f"{math.ceil(seconds / 10) * 10} s"
    if seconds < 3600:
        return f"{math.ceil(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{math.ceil(seconds / 3600)} h"
    return f"{math.ceil(seconds / 86400)} d"
