"""Drive this project's scheduler as a user would: a generated TOML config and
``python -m scheduler run`` processes from the project's own venv (/work/main/.venv)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import redis
from common import REPO_ROOT, Proc, Procs, RedisServer, clean_env, wait_until
from jobsets import Job

NAME = "scheduler"
PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
NAMESPACE = "bench"
LEASE_TTL = "1.5s"  # the documented default, written out so a change of default shows here
LEASE_KEY = f"{NAMESPACE}:lease"  # documented in scheduler/store/keys.py
NODES_KEY = f"{NAMESPACE}:nodes"
READY_LINE = "leading with fencing token"


def _quote(text: str) -> str:
    return json.dumps(text)  # a JSON string of printable text is a TOML basic string


def write_config(path: Path, redis_url: str, jobs: Sequence[Job]) -> Path:
    lines = [
        "[scheduler]",
        f"redis_url = {_quote(redis_url)}",
        f"broker_url = {_quote(redis_url)}",
        f"namespace = {_quote(NAMESPACE)}",
        'timezone = "UTC"',
        f"lease_ttl = {_quote(LEASE_TTL)}",
    ]
    for job in jobs:
        lines += ["", f"[jobs.{job.name}]", f"task = {_quote(job.task)}"]
        if job.cron is not None:
            lines.append(f"cron = {_quote(job.cron.text())}")
        elif job.every_s is not None:
            lines.append(f'every = "{job.every_s}s"')
        lines.append(f"queue = {_quote(job.queue)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def version() -> str:
    """The package version, the commit, and whether scheduler/ has uncommitted changes."""
    done = subprocess.run(
        [str(PYTHON), "-c", "import scheduler; print(scheduler.__version__)"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "scheduler"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    suffix = "+local changes" if dirty.stdout.strip() else ""
    return f"{done.stdout.strip()} ({commit.stdout.strip()}{suffix})"


def start_node(procs: Procs, config: Path, node_id: str, tag: str = "") -> Proc:
    command = [
        str(PYTHON), "-m", "scheduler", "run", "--config", str(config), "--node-id", node_id,
    ]  # fmt: skip
    return procs.start(f"ours-{tag}{node_id}", command, clean_env())


def wait_leading(proc: Proc, timeout_s: float) -> float:
    """Wait until this node logged that it leads; the wall time it was seen (or raise)."""

    def leading() -> bool:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        return READY_LINE in proc.log_text()

    wait_until(leading, timeout_s=timeout_s, what=f"{proc.name} to lead", interval_s=0.02)
    return time.time()


def wait_standing_by(server: RedisServer, proc: Proc, node_id: str, timeout_s: float) -> None:
    """Wait until this process wrote its heartbeat record (it is up and could take over)."""

    def recorded() -> bool:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        record = server.client.hget(NODES_KEY, node_id)
        return record is not None and json.loads(record).get("pid") == proc.pid

    wait_until(recorded, timeout_s=timeout_s, what=f"{proc.name}'s heartbeat", interval_s=0.05)


def lease_holder(client: redis.Redis) -> str | None:
    """The node id in the lease ("<token> <nonce> <node id>"), or None when nobody holds it."""
    value = client.get(LEASE_KEY)
    if value is None:
        return None
    parts = value.decode(errors="replace").split(" ", 2)
    return parts[2] if len(parts) == 3 else None
