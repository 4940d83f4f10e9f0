"""systemd's notify protocol (READY=1, WATCHDOG=1, STOPPING=1): one datagram, no dependency."""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    """Send `state` to $NOTIFY_SOCKET; False when not run by systemd or the send failed."""
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
