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
        """Stream of what was sent or decided, all jobs, capped. The claim writes each
        scheduled fire as (job, slot, token); other entries add `kind`: "manual", "backfill"
        or "catchup" (an operator's fire, with `task_id`), "skipped" (with `reason`, e.g.
        "overlap"), "alert" (the dead man's switch, with `reason`). The entry id is the time
        it was written, so lateness is entry time minus slot."""
        return self._key("history")

    def reports(self, job: str) -> str:
        """Stream per job of what workers reported, capped by `history_max` and `history_ttl`:
        `event` (received, started, succeeded, failed, retried), slot, task_id, kind, worker,
        and per event `duration_s` (a finished run) and `error` (type and first line)."""
        return self._key(f"reports:{job}")

    @property
    def last_success(self) -> str:
        """Hash job -> epoch seconds (text) of the newest run a worker reported succeeded."""
        return self._key("last_success")

    @property
    def runtime_jobs(self) -> str:
        """Hash job -> JSON object: jobs added at run time (`jobs add`), written as a config's
        job table; validated by the same code as the config's jobs."""
        return self._key("runtime_jobs")

    @property
    def runtime_version(self) -> str:
        """String counter, INCRed with every change of `runtime_jobs`: the leader re-reads
        them when it moves."""
        return self._key("runtime_version")

    @property
    def pause_info(self) -> str:
        """Hash job -> JSON {since, reason, watermark}: when and why a job was paused, and its
        watermark then (`resume --catchup` fires the slots after it)."""
        return self._key("pause_info")

    @property
    def alerts(self) -> str:
        """Hash job -> JSON {since, reason}: the dead man's switch's open alerts; an entry
        goes when the job succeeds again."""
        return self._key("alerts")

    @property
    def manual_sequence(self) -> str:
        """String counter: numbers each `trigger`, so each has a task id of its own."""
        return self._key("manual_sequence")

    def config_jobs(self, config_hash: str) -> str:
        """Hash job -> JSON fingerprint: the jobs of the config with this hash, written by the
        nodes running it, with a TTL; how a standby and `plan` see what the leader runs."""
        return self._key(f"config:{config_hash}")

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
