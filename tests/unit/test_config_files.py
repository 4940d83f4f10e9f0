"""Files a config names, read hostile: FIFOs, devices, symlink loops, overlong paths, huge or
deeply nested files, bare CR line ends, binary passwords. Each is one line, quickly."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scheduler.config import MAX_NESTING, load_config
from scheduler.errors import ConfigError
from scheduler.files import CONFIG_MAX_BYTES
from tests.configs import config_file

pytestmark = pytest.mark.timeout(20)


def problems_of(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env or {})
    return caught.value.problems


def fifo(tmp_path: Path, name: str = "scheduler.toml") -> Path:
    path = tmp_path / name
    os.mkfifo(path)
    return path


def loop(tmp_path: Path, name: str = "scheduler.toml") -> Path:
    path = tmp_path / name
    (tmp_path / "other").symlink_to(path)
    path.symlink_to(tmp_path / "other")
    return path


def huge(tmp_path: Path, name: str = "scheduler.toml") -> Path:
    path = tmp_path / name
    with path.open("wb") as out:
        out.truncate(CONFIG_MAX_BYTES + 1)  # sparse: costs no disk
    return path


def overlong(tmp_path: Path) -> Path:
    return tmp_path / ("x" * 300)


def shown(path: Path) -> str:
    text = str(path)
    return text if len(text) <= 120 else f"{text[:120]}... ({len(text)} characters)"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (fifo, "not a regular file (a FIFO), not a config file"),
        (loop, "too many levels of symbolic links"),
        (huge, "larger than 64 MiB, too large for a config file"),
        (overlong, "file name too long"),
        (lambda tmp_path: tmp_path, "is a directory, not a config file"),
    ],
    ids=["fifo", "symlink-loop", "too-large", "overlong-path", "directory"],
)
def test_a_config_that_is_no_regular_file(tmp_path: Path, make, reason: str) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path)
    assert problems_of(path) == [f"{shown(path)}: {reason}"]


def test_dev_zero_as_the_config() -> None:
    assert problems_of(Path("/dev/zero")) == [
        "/dev/zero: not a regular file (a device), not a config file"
    ]


@pytest.mark.parametrize("make", [fifo, loop, huge], ids=["fifo", "symlink-loop", "too-large"])
def test_an_include_that_is_no_regular_file(tmp_path: Path, make) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "jobs.d").mkdir()
    included = make(tmp_path / "jobs.d", "bad.toml")
    config_file(tmp_path / "jobs.d", '[jobs.ok]\ntask = "t"\nevery = 5\n', "ok.toml")
    main = config_file(tmp_path, '[scheduler]\ninclude = ["jobs.d/*.toml"]\n')
    [line] = problems_of(main)
    assert line.startswith(f"{included}: ")
    assert "Traceback" not in line
    assert "\n" not in line


def deep(kind: str, depth: int) -> str:
    if kind == "arrays":
        return "a = " + "[" * depth + "]" * depth + "\n"
    if kind == "unclosed-arrays":
        return "a = " + "[" * depth + "\n"
    if kind == "inline-tables":
        return "a = " + "{b = " * depth + "1" + "}" * depth + "\n"
    if kind == "dotted-key":
        return "a" + ".a" * depth + " = 1\n"
    if kind == "table-header":
        return "[" + "a." * depth + "a]\nx = 1\n"
    raise AssertionError(kind)


# Where the first level past MAX_NESTING (64) is: after "a = " and 64 brackets, and so on.
DEEP = [
    ("arrays", "scheduler.toml: line 1, column 69"),
    ("unclosed-arrays", "scheduler.toml: line 1, column 69"),
    ("inline-tables", f"scheduler.toml: line 1, column {5 + 5 * 64}"),
    ("dotted-key", f"scheduler.toml: line 1, column {2 + 2 * 64}"),
    ("table-header", f"scheduler.toml: line 1, column {1 + 2 * 64}"),
]


@pytest.mark.parametrize(("kind", "where"), DEEP, ids=[kind for kind, _ in DEEP])
def test_deep_nesting_is_refused_before_parsing(tmp_path: Path, kind: str, where: str) -> None:
    path = config_file(tmp_path, deep(kind, 100_000))  # about 200 KB or more
    started = time.monotonic()
    found = problems_of(path)
    assert found == [
        f"{where}: nested deeper than {MAX_NESTING} levels (arrays, inline tables, dotted keys)"
    ]
    assert time.monotonic() - started < 5


def test_nesting_inside_strings_and_comments_does_not_count(tmp_path: Path) -> None:
    text = (
        '[jobs.a]\ntask = "t"\nevery = 5\n'
        f'args = ["{"[" * 200}", \'{"{" * 200}\', """{"." * 200}"""]  # {"[" * 200}\n'
        'kwargs = { deep = [[[[1.5]]]], "x.y" = { "a.b" = 2 } }\n'
    )
    config = load_config(config_file(tmp_path, text), {})
    assert config.jobs["a"].args == ("[" * 200, "{" * 200, "." * 200)


def test_a_broken_file_nested_less_than_the_cap_gets_tomllib_s_line(tmp_path: Path) -> None:
    path = config_file(tmp_path, "a = " + "[" * 30 + "1" + "]" * 29 + "\n")
    assert problems_of(path) == ["scheduler.toml: line 1, at its end: Unclosed array"]


def test_bare_cr_line_ends_are_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.toml"
    path.write_bytes(b'[jobs.a]\r\ntask = "t"\revery = 5\r')
    assert problems_of(path) == [
        "scheduler.toml: line 2: a carriage return without a line feed "
        "(TOML lines end in LF or CRLF)"
    ]


def test_crlf_line_ends_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.toml"
    path.write_bytes(b'[jobs.a]\r\ntask = "t"\r\nevery = 5\r\n')
    assert list(load_config(path, {}).jobs) == ["a"]


def test_a_bare_cr_in_an_include_names_the_include(tmp_path: Path) -> None:
    (tmp_path / "more.toml").write_bytes(b'[jobs.a]\ntask = "t"\nevery = 5\r')
    main = config_file(tmp_path, '[scheduler]\ninclude = ["more.toml"]\n')
    assert problems_of(main) == [
        "more.toml: line 3: a carriage return without a line feed (TOML lines end in LF or CRLF)"
    ]


def password_env(path: Path) -> dict[str, str]:
    return {"SCHEDULER_REDIS_PASSWORD_FILE": str(path)}


def test_a_binary_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"\xff\xfe\x00binary")
    main = config_file(tmp_path, "[scheduler]\n")
    assert problems_of(main, password_env(secret)) == [
        f"SCHEDULER_REDIS_PASSWORD_FILE: {secret}: not UTF-8 text (invalid start byte at byte 0)"
    ]


def test_a_password_file_with_a_nul_byte(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"s3cret\x00tail\n")
    main = config_file(tmp_path, "[scheduler]\n")
    found = problems_of(main, password_env(secret))
    assert found == [
        "SCHEDULER_REDIS_PASSWORD_FILE: the password holds a NUL byte or another control "
        "character (a password is one line of text)"
    ]
    assert "s3cret" not in found[0]


def test_a_password_file_set_in_the_config_is_named_by_its_key(tmp_path: Path) -> None:
    secret = fifo(tmp_path, "secret")
    main = config_file(tmp_path, f'[scheduler]\nredis_password_file = "{secret}"\n')
    assert problems_of(main) == [
        f"scheduler.toml: scheduler.redis_password_file: {secret}: not a regular file "
        "(a FIFO), not a password file"
    ]


@pytest.mark.parametrize("make", [fifo, loop], ids=["fifo", "symlink-loop"])
def test_a_password_file_that_is_no_regular_file(tmp_path: Path, make) -> None:  # type: ignore[no-untyped-def]
    secret = make(tmp_path, "secret")
    main = config_file(tmp_path, "[scheduler]\n")
    [line] = problems_of(main, password_env(secret))
    assert line.startswith(f"SCHEDULER_REDIS_PASSWORD_FILE: {secret}: ")


def test_validate_checks_the_message_key_file_without_importing_kombu(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_bytes(b"too short")
    config = tmp_path / "scheduler.toml"
    config.write_text(
        f'[scheduler]\nmessage_key_file = "{key}"\n[jobs.a]\ntask = "t"\nevery = "1s"\n'
    )
    probe = (
        "import sys\nfrom scheduler.config import load_config\nfrom scheduler.errors import "
        "ConfigError\ntry:\n    load_config(sys.argv[1])\nexcept ConfigError as exc:\n"
        "    print(exc)\nprint('kombu' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(config)], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == [
        f"scheduler.toml: scheduler.message_key_file: {key} holds 9 bytes; a message key needs "
        "32 or more",
        "False",
    ]
