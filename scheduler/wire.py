"""The wire identity of a fire: its headers, its slot text and its deterministic task id.

Both sides use it: the scheduler writes these into every message, the worker hooks in
`jobs/` read them back. Pure: no Celery, no Redis.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from hashlib import sha1, sha256

HEADER_JOB = "scheduler_job"
HEADER_SLOT = "scheduler_slot"
HEADER_TOKEN = "scheduler_token"  # noqa: S105 (a fencing token, not a secret)
# HMAC-SHA256 of the fire, hex; only when a message key is configured (scheduler/signing.py).
HEADER_SIGNATURE = "scheduler_signature"
# Why an operator's fire was sent: one of FIRE_KINDS other than "scheduled". Absent on the
# fires of the schedule itself.
HEADER_KIND = "scheduler_kind"
FIRE_KINDS = ("scheduled", "manual", "backfill", "catchup")
# The fingerprint of the job's definition that sent the fire (`job_hash`): a worker running a
# built-in task (shell, http) from its own copy of the config refuses a message whose job it
# does not know or knows differently, so access to the broker never injects a command.
HEADER_JOB_HASH = "scheduler_job_hash"
# A chain's later steps, sent by the worker that ran the step before (jobs/hooks.py stamps
# them): the step's index (the fire's own message is step 0) and the fire's task id.
HEADER_STEP = "scheduler_step"
HEADER_FIRE = "scheduler_fire"

_URL_NAMESPACE = uuid.NAMESPACE_URL.bytes


@lru_cache(maxsize=256)
def slot_text(slot_s: int) -> str:
    """A slot as the headers and task ids write it: ISO 8601 UTC, whole seconds, "Z"."""
    return datetime.fromtimestamp(slot_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def task_id(namespace: str, job: str, slot_s: int) -> str:
    """Deterministic: sending the same fire again produces the same id."""
    return task_id_of_text(namespace, job, slot_text(slot_s))


def task_id_of_text(namespace: str, job: str, slot: str) -> str:
    """uuid5(NAMESPACE_URL, "scheduler://<namespace>/<job>/<slot>"), written out: a burst
    computes thousands, and this is 4x faster than uuid.uuid5."""
    name = f"scheduler://{namespace}/{job}/{slot}".encode()
    digest = bytearray(sha1(_URL_NAMESPACE + name).digest())  # noqa: S324 (RFC 4122 uses SHA-1)
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    text = digest[:16].hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def manual_task_id(namespace: str, job: str, slot: str, sequence: int) -> str:
    """The task id of an operator's `trigger`: "/manual/<n>" after the slot, so it can never
    equal the id of a scheduled (or backfilled) fire of the same slot, nor of another trigger."""
    return task_id_of_text(namespace, job, f"{slot}/manual/{sequence}")


def job_hash(fingerprint: object) -> str:
    """16 hex digits of SHA-256 over a job's fingerprint (JobSpec.fingerprint()) as canonical
    JSON: equal on every host that reads the same definition."""
    text = json.dumps(fingerprint, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return sha256(text.encode()).hexdigest()[:16]


def member_id(ident: str, index: int) -> str:
    """The task id of message `index` of a fire (a group's members): the fire's own id for
    the first, then uuid5(the fire's id, index), so a repeated fire repeats every id."""
    return ident if index == 0 else str(uuid.uuid5(uuid.UUID(ident), str(index)))
