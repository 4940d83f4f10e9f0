"""The worker's own copy of the job definitions, for the built-in tasks (shell, http).

A shell or http message carries only the job's name, its slot and the hash of the definition
that sent it (`scheduler.wire.HEADER_JOB_HASH`); what to run comes from the config file this
worker reads (``$SCHEDULER_CONFIG``, as for its settings). So write access to the broker can
name a job, never define a command: a message naming a job this file does not define, one that
is not a built-in job here, or one whose hash differs from this copy's, is refused.

Runtime jobs (`scheduler jobs add`, kept in Redis) are not looked up: they cannot run commands
or requests, because whoever can write Redis could then define one.

The file is read again when it (or an included file) changes: its modification time, size or
inode, checked with a few stat calls per message. A file that became invalid keeps the last
valid copy in use, as a node does on a reload that fails, and is logged once per change.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scheduler.config import Config, default_config_path, load_config
from scheduler.errors import ConfigError
from scheduler.jobspec import HTTP_TASK, SHELL_TASK, JobSpec
from scheduler.wire import job_hash

log = logging.getLogger(__name__)

Stamp = tuple[tuple[str, int, int, int], ...]  # (path, mtime ns, size, inode) of each file


class Refused(Exception):
    """A built-in task's message this worker will not run; the message says why."""


@dataclass(frozen=True, slots=True)
class _Copy:
    config: Config
    stamp: Stamp
    hashes: dict[str, str]  # job -> job_hash, filled as jobs are asked for


def file_stamp(main: Path, includes: tuple[str, ...]) -> Stamp:
    """What changes when the config or one of its included files does."""
    paths = [main]
    for pattern in includes:
        full = pattern if os.path.isabs(pattern) else str(main.parent / pattern)
        paths.extend(sorted(Path(p) for p in glob.glob(full)))  # as load_config expands it
    stamp = []
    for path in paths:
        try:
            info = path.stat()
        except OSError:
            stamp.append((str(path), -1, -1, -1))
        else:
            stamp.append((str(path), info.st_mtime_ns, info.st_size, info.st_ino))
    return tuple(stamp)


class JobLookup:
    """Finds built-in jobs in the worker's config file, reading it again when it changed."""

    def __init__(
        self,
        path: Path | None = None,
        loader: Callable[[Path], Config] = load_config,
    ) -> None:
        self._path = path
        self._load = loader
        self._copy: _Copy | None = None
        self._bad_stamp: Stamp | None = None  # of the invalid file last logged
        self._lock = threading.Lock()  # a threads pool shares one lookup

    @property
    def path(self) -> Path:
        return self._path if self._path is not None else default_config_path()

    def builtin_job(self, name: str, task: str, sent_hash: str | None) -> JobSpec:
        """The definition of job `name` if this worker may run it as `task` (SHELL_TASK or
        HTTP_TASK) for a message that carries `sent_hash`; raises Refused otherwise."""
        if not sent_hash:
            raise Refused("the message carries no scheduler_job_hash header")
        copy = self._current()
        job = copy.config.jobs.get(name)
        where = f"the worker's config {copy.config.path}"
        if job is None:
            raise Refused(
                f"job {name!r} is not in {where} (runtime jobs cannot run commands or requests)"
            )
        if task == SHELL_TASK and not job.command:
            raise Refused(f"job {name!r} is not a shell job in {where}")
        if task == HTTP_TASK and job.http is None:
            raise Refused(f"job {name!r} is not an http job in {where}")
        ours = copy.hashes.get(name)
        if ours is None:
            ours = copy.hashes[name] = job_hash(job.fingerprint())
        if sent_hash != ours:
            raise Refused(
                f"job {name!r} hash {sent_hash} differs from {where} ({ours}): the message was "
                "sent for another definition"
            )
        return job

    def _current(self) -> _Copy:
        with self._lock:
            main = self.path
            copy = self._copy
            if copy is not None and copy.config.path == main:
                stamp = file_stamp(main, copy.config.scheduler.include)
                if stamp == copy.stamp:
                    return copy
            else:
                stamp = file_stamp(main, ())
            if not os.path.lexists(main):
                raise Refused(f"this worker has no config file at {main} to look jobs up in")
            try:
                config = self._load(main)
            except ConfigError as exc:
                first = exc.problems[0] if exc.problems else str(exc)
                if copy is None:
                    raise Refused(f"the worker's config is invalid: {first}") from None
                if stamp != self._bad_stamp:
                    self._bad_stamp = stamp
                    log.error(
                        "the worker's config %s is invalid (%s); built-in jobs run from the "
                        "copy read before",
                        main,
                        first,
                    )
                return copy
            # The main file as it was before the read: one written during the read differs
            # from it, and is read again at the next message.
            after = file_stamp(main, config.scheduler.include)
            self._copy = _Copy(config, (stamp[0], *after[1:]), {})
            self._bad_stamp = None
            return self._copy
