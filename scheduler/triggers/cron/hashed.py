"""``H``: a per-job value that spreads many "hourly" jobs over the hour (beyond cronie).

Each field draws its own number: the first 8 bytes of BLAKE2b over the job name's UTF-8
bytes, a NUL and the field's name (``minute``, ``hour``, ...), never Python's ``hash()``
(salted per process), so every node, restart and Python version picks the same values. A
hash per field, not one for the whole expression: with one number ``H H * * *`` ties the hour
to the minute and reaches only 120 of a day's 1,440 minutes. BLAKE2b, not CRC-32: CRC is
linear, so two CRCs of the same name tie the low bits of one field to the other's. Keyed by
the field's name rather than its position, so the 5- and 6-field forms agree on ``minute``.

Forms, with ``n`` that field's number and ``[low, high]`` the field's hash range:

- ``H``         -> ``low + n % (high - low + 1)``
- ``H/k``       -> offset ``n % k``, then every k: ``low + offset``, ``low + offset + k``, ...
- ``H(a-b)``    -> ``a + n % (b - a + 1)``
- ``H(a-b)/k``  -> as ``H/k`` over ``[a, b]``

The hash range is the field's range except for day-of-month (1-28, so the day exists in every
month) and day-of-week (0-6, so Sunday is not drawn twice as often). Each H item is rewritten
into plain cron text, which is then parsed like any other field.
"""

from __future__ import annotations

import hashlib

from scheduler.errors import InvalidSchedule
from scheduler.triggers.cron.fields import FieldSpec, parse_range, parse_step, split_items


def field_hash(job_name: str, field_name: str) -> int:
    """The stable number behind every ``H`` of one field of one job (64 bits)."""
    digest = hashlib.blake2b(
        job_name.encode("utf-8") + b"\0" + field_name.encode("ascii"), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big")


def _resolve_item(item: str, spec: FieldSpec, number: int) -> str:
    rest = item[1:]
    if rest.startswith("("):
        inside, closed, rest = rest[1:].partition(")")
        if not closed:
            raise InvalidSchedule(f'{spec.name} field: cannot read "{item}"')
        low, high = parse_range(inside, spec, item)
    else:
        low, high = spec.hash_range
    if not rest:
        return str(low + number % (high - low + 1))
    if not rest.startswith("/"):
        raise InvalidSchedule(f'{spec.name} field: cannot read "{item}"')
    step = parse_step(rest[1:], spec, item)
    if step > high - low + 1:
        raise InvalidSchedule(
            f'{spec.name} field: step {step} in "{item}" is longer than the range {low}-{high}'
        )
    return f"{low + number % step}-{high}/{step}"


def resolve_hashes(text: str, spec: FieldSpec, job_name: str) -> str:
    """``text`` with each ``H`` item replaced by the plain value(s) it stands for."""
    if "H" not in text and "h" not in text:
        return text
    items = split_items(text, spec)
    number = field_hash(job_name, spec.name)
    # No month or weekday name starts with H, so a leading H always means hash.
    return ",".join(_resolve_item(i, spec, number) if i[0] in "Hh" else i for i in items)
