"""`--watch`: redraw a read command's output every few seconds until Ctrl-C, like `watch(1)`."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Annotated

import typer

WatchOption = Annotated[
    bool, typer.Option("--watch", "-w", help="Redraw every --interval seconds until Ctrl-C.")
]
IntervalOption = Annotated[
    float, typer.Option("--interval", min=0.2, max=3600, help="Seconds between redraws.")
]

_CLEAR = "\x1b[H\x1b[2J"


def watch(render: Callable[[], str], interval_s: float, rounds: int | None = None) -> None:
    """Print `render()` again every `interval_s`; a terminal is cleared between redraws, a pipe
    gets the frames one after another. `rounds` bounds it (tests); Ctrl-C ends it quietly."""
    done = 0
    try:
        while rounds is None or done < rounds:
            frame = render()
            if sys.stdout.isatty():
                typer.echo(_CLEAR, nl=False)
            typer.echo(frame)
            done += 1
            if rounds is None or done < rounds:
                time.sleep(interval_s)
    except KeyboardInterrupt:
        pass
