"""What a node runs: its config file's jobs, and the runtime jobs (`jobs add`) that the config
does not shadow. Re-read when the runtime jobs' version in Redis moves; Redis failing keeps the
last good set, and each runtime job skipped or shadowed is logged once."""

from __future__ import annotations

from scheduler.config import Config
from scheduler.jobspec import JobSpec
from scheduler.runtime import RuntimeJobs, merge, running_jobs
from scheduler.store.runtime import RuntimeWatch


class JobSet:
    def __init__(self, config: Config, watch: RuntimeWatch) -> None:
        self.watch = watch
        self.runtime = RuntimeJobs()
        self.jobs: dict[str, JobSpec] = dict(config.jobs)

    def refresh(self, config: Config, force: bool = False) -> bool:
        """Re-read the runtime jobs if they changed (looked at every half second; at once with
        `force`); True when the jobs were merged anew."""
        if not self.watch.poll(force):
            return False
        self.runtime, self.jobs = self.merged(config)
        return True

    def merged(self, config: Config) -> tuple[RuntimeJobs, dict[str, JobSpec]]:
        """The known runtime jobs validated against `config`, and the jobs to run."""
        found = merge(config, self.watch.stored)
        shadowed = [
            f"runtime job {name} is shadowed by the job of that name in {config.path.name}: "
            "the config's job runs (remove the runtime one: `scheduler jobs remove`)"
            for name in found.shadowed
        ]
        skipped = [f"runtime job skipped: {line}" for line in found.problems]
        self.watch.say([*self.watch.problems, *skipped, *shadowed])
        return found, running_jobs(config, found.jobs)

    def use(self, runtime: RuntimeJobs, jobs: dict[str, JobSpec]) -> None:
        """Run these (a reload merged them against its new config)."""
        self.runtime, self.jobs = runtime, jobs
