"""What chaos tests count: the claims in the fire history, the messages at the broker (a Redis
list, or a RabbitMQ queue nobody else consumes), and the executions the worker hook let run.
And the tally that turns them into missing / repeated / unexpected (job, slot) pairs."""

from __future__ import annotations

import contextlib
import itertools
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis
from kombu import Connection, Exchange, Queue

from scheduler.store.keys import Keys
from tests.integration.harness import Children, Fired, fired_from, slot_text, task_id_for

Pair = tuple[str, int]  # (job, slot in epoch seconds)


# --- the fire history: every claim, with the Redis time it was made --------------------------


@dataclass(frozen=True)
class Claim:
    job: str
    slot_s: int
    token: int
    at_ms: int  # Redis time of the claim (the stream entry's id)


def read_claims(client: redis.Redis, keys: Keys) -> list[Claim]:
    entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(keys.history)  # type: ignore[assignment]
    return [
        Claim(
            job=fields[b"job"].decode(),
            slot_s=int(fields[b"slot"]),
            token=int(fields[b"token"]),
            at_ms=int(entry_id.split(b"-")[0]),
        )
        for entry_id, fields in entries
    ]


def first_claim_ms(claims: Iterable[Claim], token: int) -> int | None:
    """When the leader holding `token` made its first claim (Redis ms), if it made one."""
    return min((c.at_ms for c in claims if c.token == token), default=None)


# --- executions the worker hook let run ------------------------------------------------------


@dataclass(frozen=True)
class Execution:
    job: str
    slot_s: int
    task_id: str
    worker: str


def _slot_seconds(text: str) -> int:
    if text.isdigit():
        return int(text)
    return math.floor(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def read_executions(client: redis.Redis, keys: Keys) -> list[Execution]:
    entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(keys.executions)  # type: ignore[assignment]
    result = []
    for _, raw in entries:
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        result.append(
            Execution(
                job=fields["job"],
                slot_s=_slot_seconds(fields["slot"]),
                task_id=fields.get("task_id", ""),
                worker=fields.get("worker", ""),
            )
        )
    return result


# --- a RabbitMQ queue the test reads itself ---------------------------------------------------


def celery_queue(name: str) -> Queue:
    """The queue as Celery and the scheduler declare it, so our declaration agrees with theirs."""
    return Queue(name, Exchange(name, "direct"), routing_key=name)


def fired_from_amqp(message: Any) -> Fired:
    args, kwargs, _embed = message.decode()
    return fired_from(message.headers, args, kwargs)


@dataclass
class AmqpQueueReader:
    """Reads (and acks) every message of one queue, in arrival order; deletes it at the end."""

    url: str
    name: str
    messages: list[Fired] = field(default_factory=list)
    _connection: Connection | None = None
    _queue: Any = None

    def declare(self) -> None:
        """Declare the queue before the first publish, so it holds every message from then on."""
        self._connection = Connection(self.url, connect_timeout=5)
        self._queue = celery_queue(self.name)(self._connection.default_channel)
        self._queue.declare()

    def poll(self) -> list[Fired]:
        """Take every message waiting now; all messages read so far, oldest first."""
        assert self._queue is not None, "declare() first"
        while True:
            message = self._queue.get(no_ack=True, accept=["json"])
            if message is None:
                return self.messages
            self.messages.append(fired_from_amqp(message))

    def close_and_delete(self) -> None:
        """Delete the queue and its exchange (the machine's RabbitMQ is shared)."""
        with contextlib.suppress(Exception):
            if self._connection is not None:
                self._connection.release()
        delete_amqp_queues(self.url, [self.name])


def delete_amqp_queues(url: str, names: Iterable[str]) -> None:
    with Connection(url, connect_timeout=5) as connection:
        channel = connection.default_channel
        for name in names:
            channel.queue_delete(name)
            channel.exchange_delete(name)


def amqp_queue_exists(url: str, name: str) -> bool:
    with Connection(url, connect_timeout=5) as connection:
        try:
            connection.default_channel.queue_declare(name, passive=True)
        except connection.channel_errors:
            return False
        return True


@contextlib.contextmanager
def owned_amqp_queues(
    url: str, parked: str, *others: str, children: Children
) -> Iterator[AmqpQueueReader]:
    """Our queues on the shared RabbitMQ for the block: `parked` declared and read by the reader
    yielded, `others` left to whoever declares them. At the end, whatever happened, every child
    is killed, the last of `parked` read, and all of them deleted."""
    reader = AmqpQueueReader(url, parked)
    try:
        reader.declare()
        yield reader
    finally:
        children.kill_all()  # nothing may declare the queues again after we delete them
        reader.poll()
        reader.close_and_delete()
        if others:
            delete_amqp_queues(url, others)


# --- the tally ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """(job, slot) pairs seen in a window, against the expected set: every job, every second."""

    expected: int
    missing: tuple[Pair, ...]
    repeated: dict[Pair, int]  # pair -> how many times it was seen (> 1)
    unexpected: tuple[Pair, ...]

    @property
    def repeats(self) -> int:
        """Copies beyond the first, summed."""
        return sum(count - 1 for count in self.repeated.values())

    @property
    def complete(self) -> bool:
        """Nothing missing, nothing outside the expected set (repeats allowed)."""
        return not (self.missing or self.unexpected)

    @property
    def exact(self) -> bool:
        return not (self.missing or self.repeated or self.unexpected)

    def describe(self, what: str, limit: int = 20) -> str:
        def show(pairs: Iterable[Pair]) -> str:
            items = [f"{job}@{slot_text(slot)}" for job, slot in sorted(pairs)]
            more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
            return ", ".join(items[:limit]) + more

        repeated = {f"{job}@{slot_text(s)}": n for (job, s), n in sorted(self.repeated.items())}
        return (
            f"{what}: expected {self.expected}; missing {len(self.missing)} [{show(self.missing)}]; "
            f"repeated {self.repeats} {dict(itertools.islice(repeated.items(), limit))}; "
            f"unexpected {len(self.unexpected)} [{show(self.unexpected)}]"
        )


def expected_pairs(jobs: Iterable[str], first_s: int, last_s: int) -> set[Pair]:
    return {(job, second) for job in jobs for second in range(first_s, last_s + 1)}


def tally(pairs: Iterable[Pair], jobs: Sequence[str], first_s: int, last_s: int) -> Tally:
    """Compare the pairs of `jobs` whose slot is in [first_s, last_s] with one per job per second."""
    chosen = set(jobs)
    counts = Counter(p for p in pairs if p[0] in chosen and first_s <= p[1] <= last_s)
    expected = expected_pairs(jobs, first_s, last_s)
    return Tally(
        expected=len(expected),
        missing=tuple(sorted(expected - counts.keys())),
        repeated={pair: n for pair, n in sorted(counts.items()) if n > 1},
        unexpected=tuple(sorted(counts.keys() - expected)),
    )


def pairs_of(records: Iterable[Fired | Claim | Execution]) -> list[Pair]:
    result = []
    for record in records:
        slot = record.slot_s
        result.append((record.job, slot))
    return result


def newest_per_job(pairs: Iterable[Pair], jobs: Iterable[str]) -> int | None:
    """The newest slot every one of `jobs` has reached, or None if one has none yet."""
    newest: dict[str, int] = {}
    for job, slot in pairs:
        newest[job] = max(newest.get(job, slot), slot)
    reached = [newest.get(job) for job in jobs]
    if any(slot is None for slot in reached):
        return None
    return min(slot for slot in reached if slot is not None)


def fenced_claims(claims: Iterable[Claim]) -> list[Claim]:
    """Claims made under a token after a newer token had already claimed: a fenced leader that
    still wrote. (A newer token exists only once the older lease ended, so any such claim was
    made after its own lease ended.)"""
    newest = 0
    late = []
    for claim in sorted(claims, key=lambda c: c.at_ms):
        if claim.token < newest:
            late.append(claim)
        newest = max(newest, claim.token)
    return late


def first_seen_out_of_order(messages: Sequence[Fired], jobs: Iterable[str]) -> list[str]:
    """Per job, slots whose first copy arrived after the first copy of a newer slot."""
    problems = []
    for job in jobs:
        seen: set[int] = set()
        newest = -1
        for message in messages:
            if message.job != job or message.slot_s in seen:
                continue
            seen.add(message.slot_s)
            if message.slot_s < newest:
                problems.append(f"{job}@{slot_text(message.slot_s)} after {slot_text(newest)}")
            newest = max(newest, message.slot_s)
    return problems


def wrong_task_ids(messages: Iterable[Fired], namespace: str) -> list[str]:
    """Messages whose task id is not the one docs/guarantees.md derives from (namespace, job, slot)."""
    return [
        f"{m.job}@{m.slot}: {m.task_id}"
        for m in messages
        if m.task_id != task_id_for(namespace, m.job, m.slot)
    ]
