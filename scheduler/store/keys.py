"""Every Redis key of a deployment, in one place. Nothing else builds a key.

All keys share the deployment's namespace prefix, so several deployments can share a server.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    namespace: str

    def _key(self, name: str) -> str:
        return f"{self.namespace}:{name}"

    @property
    def lease(self) -> str:
        """String "<token> <nonce> <node id>" with a TTL: who leads, under which fencing token."""
        return self._key("lease")

    @property
    def fence(self) -> str:
        """String: the newest fencing token handed out; tokens also never fall below Redis TIME."""
        return self._key("fence")

    @property
    def handover(self) -> str:
        """List: pushed on release so standbys blocked on it take over at once."""
        return self._key("handover")

    @property
    def watermarks(self) -> str:
        """Hash job -> newest claimed slot (epoch seconds). A new leader resumes from here."""
        return self._key("watermarks")

    @property
    def last_fire(self) -> str:
        """Hash job -> "<slot> <token>": the newest slot fired, for `jobs list`."""
        return self._key("last_fire")

    @property
    def history(self) -> str:
        """Stream of fires (job, slot, token), capped: what was enqueued, by whom."""
        return self._key("history")

    @property
    def missed(self) -> str:
        """Stream of missed ranges (job, first, last, count, reason), capped."""
        return self._key("missed")

    @property
    def missed_open(self) -> str:
        """Hash job -> "<first> <last> <count> <reason>": a gap still growing (the outbox is
        full); it becomes one `missed` record when the job's next slot is claimed."""
        return self._key("missed_open")

    @property
    def paused(self) -> str:
        """Set of paused job names: their slots advance the watermark but are not sent."""
        return self._key("paused")

    @property
    def paused_skips(self) -> str:
        """Hash job -> number of slots skipped while paused."""
        return self._key("paused_skips")

    @property
    def outcomes(self) -> str:
        """Hash job -> JSON of the newest execution outcome reported by a worker hook."""
        return self._key("outcomes")

    @property
    def nodes(self) -> str:
        """Hash node id -> JSON heartbeat (host, pid, version, clock offset, config hash...)."""
        return self._key("nodes")

    @property
    def outbox(self) -> str:
        """List of claimed slots' messages (kombu's Redis-transport JSON, so any node can send
        them) not yet accepted by a non-Redis broker, oldest first. Only used when the broker
        is not the state's Redis."""
        return self._key("outbox")

    @property
    def outbox_quarantine(self) -> str:
        """List of outbox entries that could not be read as a message (raw bytes, as found),
        oldest first, capped: moved off the outbox head so they stop blocking it."""
        return self._key("outbox_quarantine")

    @property
    def epoch(self) -> str:
        """String: a random id written once; when it vanishes, Redis lost its data."""
        return self._key("epoch")

    @property
    def state_lost(self) -> str:
        """String (JSON): when a node noticed that Redis had lost this deployment's data."""
        return self._key("state_lost")

    @property
    def quarantine(self) -> str:
        """Hash job -> JSON {key, found, since}: jobs the leader does not fire because a value
        they need in Redis is not what we wrote; shown by `status` and `jobs list`."""
        return self._key("quarantine")

    def set_aside(self, key: str, stamp_ms: int) -> str:
        """Where a shared key that held the wrong type is moved, kept for inspection."""
        return f"{key}:corrupt:{stamp_ms}"

    def run_claim(self, task_id: str) -> str:
        """String with a TTL: the worker hook's claim that this task id has run (or is running)."""
        return self._key(f"run:{task_id}")

    @property
    def executions(self) -> str:
        """Stream of executions the worker hook let run (job, slot, task id, worker), capped."""
        return self._key("executions")
