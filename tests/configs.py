"""Config files on disk for tests that load one the way the CLI and the nodes do."""

from __future__ import annotations

from pathlib import Path


def config_file(directory: Path, text: str, name: str = "scheduler.toml") -> Path:
    """Write `text` as `directory/name` (its folder must exist); the path."""
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path
