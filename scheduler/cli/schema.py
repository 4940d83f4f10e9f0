"""`scheduler schema`: the config file's JSON Schema, for editors (Taplo, Even Better TOML)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scheduler.cli.common import fail


def schema(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the schema to this file instead of standard output."
        ),
    ] = None,
) -> None:
    """Print the JSON Schema of the config file (point an editor's TOML support at it)."""
    from scheduler.schema import schema_text  # noqa: PLC0415  (only this command needs it)

    text = schema_text()
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write the schema to {output}: {exc.strerror or exc}", 1)
    typer.echo(f"{output}: schema written ({len(text)} bytes)", err=True)
