"""Message authentication: an HMAC-SHA256 that ties a fire's identity to what it runs.

Anyone who can write to the broker can send a message with the (predictable) task id of a
future slot; without a signature, the worker hook would run it as that job's fire and skip the
genuine one as a repeat. With a shared key (``[scheduler] message_key_file``, the same file on
scheduler and worker hosts), the scheduler signs every message and the hook refuses the ones
whose signature is missing or wrong before it claims anything (docs/guarantees.md).

What is signed: the task name, the arguments, the keyword arguments and the embedded
callbacks/errbacks/chain/chord, then the job, the slot and the task id. The fencing token is
not: it differs per leader, and a replayed genuine message is the run-once claim's business.
The arguments are signed as canonical JSON (kombu's encoder, sorted keys, no spaces), which the
worker rebuilds from the arguments it decoded, so both sides sign the same bytes without the
worker needing the raw body. Pure: no Celery, no Redis.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

from kombu.utils.json import dumps as kombu_dumps

from scheduler.message_key import MIN_KEY_BYTES

# Bumped if what is signed ever changes, so old and new signatures never verify each other.
_VERSION = b"scheduler-signature-v1\n"
EMBEDDED = ("callbacks", "errbacks", "chain", "chord")
_BLOCK = 64  # SHA-256's block size, in bytes


def _field(value: bytes) -> bytes:
    # Length-prefixed, so no two different field lists ever make the same bytes.
    return b"%d:%s\n" % (len(value), value)


def canonical_body(
    args: Sequence[Any], kwargs: Mapping[str, Any], embedded: Mapping[str, Any] | None = None
) -> bytes:
    """The arguments and embedded signatures as the signature covers them. Empty callback
    lists count as none: Celery writes either when a message is sent again by `retry()`."""
    embed = {name: (embedded or {}).get(name) or None for name in EMBEDDED}
    text = kombu_dumps([list(args), dict(kwargs), embed], sort_keys=True, separators=(",", ":"))
    return str(text).encode()


class Signer:
    """Signs and verifies fires with one key. `prepare` does the per-job part once; a fire
    then costs two hash copies and updates (HMAC as RFC 2104 writes it, so the inner and outer
    states can be kept: about half the time of copying an `hmac.HMAC`)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"a message key needs {MIN_KEY_BYTES} bytes or more")
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        padded = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))

    def prepare(self, task: str, body: bytes) -> tuple[Any, Any]:
        """The hash states after the parts a job's fires share (task name, canonical body)."""
        inner = self._inner.copy()
        inner.update(_VERSION + _field(task.encode()) + _field(body))
        return inner, self._outer

    @staticmethod
    def finish(prepared: tuple[Any, Any], job: str, slot: str, task_id: str) -> str:
        """The signature of one fire, from `prepare`'s states (left unchanged)."""
        inner, outer = prepared[0].copy(), prepared[1].copy()
        name, slot_b, ident = job.encode(), slot.encode(), task_id.encode()
        inner.update(
            b"%d:%s\n%d:%s\n%d:%s\n" % (len(name), name, len(slot_b), slot_b, len(ident), ident)
        )
        outer.update(inner.digest())
        return str(outer.hexdigest())

    def sign(self, task: str, body: bytes, job: str, slot: str, task_id: str) -> str:
        return self.finish(self.prepare(task, body), job, slot, task_id)

    def verify(
        self, signature: object, task: str, body: bytes, job: str, slot: str, task_id: str
    ) -> str | None:
        """None if `signature` is right; else why not (for the refusal's log line)."""
        if signature is None:
            return "unsigned"
        if not isinstance(signature, str):
            return "signature is not text"
        expected = self.sign(task, body, job, slot, task_id)
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            return "wrong signature"
        return None


def signed_bytes(task: str, body: bytes, job: str, slot: str, task_id: str) -> bytes:
    """What a signature is the HMAC-SHA256 of (for checking `Signer` against `hmac`)."""
    parts = (task.encode(), body, job.encode(), slot.encode(), task_id.encode())
    return _VERSION + b"".join(_field(part) for part in parts)
