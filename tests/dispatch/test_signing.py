"""Message signing, pure: what a signature covers, and the key file's one-line errors."""

from __future__ import annotations

import hashlib
import hmac
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scheduler.errors import ConfigError
from scheduler.message_key import MIN_KEY_BYTES, load_key
from scheduler.signing import Signer, canonical_body, signed_bytes

KEY = bytes(range(32))
FIRE = ("app.report", canonical_body(["a", 1], {"x": [1, 2]}), "nightly", "2027-01-15T08:00:00Z")
IDENT = "3f2a6b1e-0000-5000-8000-000000000000"


def test_a_signature_verifies_and_every_signed_part_matters() -> None:
    signer = Signer(KEY)
    signature = signer.sign(*FIRE, IDENT)
    assert signer.verify(signature, *FIRE, IDENT) is None
    task, body, job, slot = FIRE
    others = [
        ("other.task", body, job, slot, IDENT),
        (task, canonical_body(["a", 2], {"x": [1, 2]}), job, slot, IDENT),
        (task, canonical_body(["a", 1], {"x": [1, 2]}, {"chain": [{"task": "evil"}]}), job, slot,
         IDENT),
        (task, body, "other-job", slot, IDENT),
        (task, body, job, "2027-01-15T08:00:01Z", IDENT),
        (task, body, job, slot, IDENT.replace("3f", "4f")),
    ]  # fmt: skip
    for fire in others:
        assert signer.verify(signature, *fire) == "wrong signature", fire
    assert Signer(bytes(range(1, 33))).verify(signature, *FIRE, IDENT) == "wrong signature"
    assert signer.verify(None, *FIRE, IDENT) == "unsigned"
    assert signer.verify(123, *FIRE, IDENT) == "signature is not text"
    assert signer.verify("é" * 64, *FIRE, IDENT) == "wrong signature"


def test_fields_cannot_slide_into_each_other() -> None:
    signer = Signer(KEY)
    task, body, _, slot = FIRE
    assert signer.sign(task, body, "ab", slot, "c") != signer.sign(task, body, "a", slot, "bc")


def test_the_canonical_body_is_what_the_worker_rebuilds_from_decoded_arguments() -> None:
    when = datetime(2027, 1, 15, tzinfo=UTC)
    # The scheduler holds tuples and a TOML datetime; the worker decodes lists and a datetime.
    assert canonical_body(("a", (1, 2)), {"b": 1, "a": when}) == canonical_body(
        ["a", [1, 2]], {"a": when, "b": 1}, {"callbacks": [], "errbacks": None}
    )


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_a_key_file_is_read_without_its_final_line_ending(tmp_path: Path) -> None:
    assert load_key(write(tmp_path / "k", b"x" * 32 + b"\n")) == b"x" * 32
    assert load_key("") is None
    assert load_key(None) is None


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: str(p / "missing"), "no such message key file"),
        (lambda p: write(p / "empty", b"\n"), "is empty"),
        (
            lambda p: write(p / "short", b"x" * 31),
            f"holds 31 bytes; a message key needs {MIN_KEY_BYTES}",
        ),
        (str, "is a directory"),
        (lambda p: (os.mkfifo(p / "fifo"), str(p / "fifo"))[1], "not a regular file (a FIFO)"),
    ],
    ids=["missing", "empty", "short", "directory", "fifo"],
)
def test_key_file_problems_are_one_line_config_errors(
    tmp_path: Path, make: object, expected: str
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(ConfigError) as caught:
        load_key(path, "scheduler.toml")
    [line] = caught.value.problems
    assert line.startswith("scheduler.toml: scheduler.message_key_file: ")
    assert expected in line, line


@pytest.mark.parametrize("key", [KEY, b"long" * 40], ids=["32 bytes", "160 bytes"])
def test_a_signature_is_the_hmac_sha256_of_the_signed_bytes(key: bytes) -> None:
    expected = hmac.new(key, signed_bytes(*FIRE, IDENT), hashlib.sha256).hexdigest()
    assert Signer(key).sign(*FIRE, IDENT) == expected
