"""``H``: a per-job value that spreads many "hourly" jobs over the hour (beyond cronie).

The value comes from CRC-32 of the job name's UTF-8 bytes, never from Python's ``hash()``
(salted per process), so every node and every restart picks the same minute. One CRC serves
every field of the expression. Forms, with ``crc`` that CRC and ``[low, high]`` the field's
hash range:

- ``H``         -> ``low + crc % (high - low + 1)``
- ``H/n``       -> offset ``crc % n``, then every n: ``low + offset``, ``low + offset + n``, ...
- ``H(a-b)``    -> ``a + crc % (b - a + 1)``
- ``H(a-b)/n``  -> as ``H/n`` over ``[a, b]``

The hash range is the field's range except for day-of-month (1-28, so the day exists in every
month) and day-of-week (0-6, so Sunday is not drawn twice as often). Each H item is rewritten
into plain cron text, which is then parsed like any other field.
"""

from __future__ import annotations

import zlib

from scheduler.errors import InvalidSchedule
from scheduler.triggers.cron.fields import FieldSpec, parse_range, parse_step, split_items


def job_crc(job_name: str) -> int:
    """The stable number behind every ``H`` of one job."""
    return zlib.crc32(job_name.encode("utf-8"))


def _resolve_item(item: str, spec: FieldSpec, crc: int) -> str:
    rest = item[1:]
    if rest.startswith("("):
        inside, closed, rest = rest[1:].partition(")")
        if not closed:
            raise InvalidSchedule(f'{spec.name} field: cannot read "{item}"')
        low, high = parse_range(inside, spec, item)
    else:
        low, high = spec.hash_range
    if not rest:
        return str(low + crc % (high - low + 1))
    if not rest.startswith("/"):
        raise InvalidSchedule(f'{spec.name} field: cannot read "{item}"')
    step = parse_step(rest[1:], spec, item)
    if step > high - low + 1:
        raise InvalidSchedule(
            f'{spec.name} field: step {step} in "{item}" is longer than the range {low}-{high}'
        )
    return f"{low + crc % step}-{high}/{step}"


def resolve_hashes(text: str, spec: FieldSpec, crc: int) -> str:
    """``text`` with each ``H`` item replaced by the plain value(s) it stands for."""
    if "H" not in text and "h" not in text:
        return text
    items = split_items(text, spec)
    # No month or weekday name starts with H, so a leading H always means hash.
    return ",".join(_resolve_item(i, spec, crc) if i[0] in "Hh" else i for i in items)
