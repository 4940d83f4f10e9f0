"""Runtime jobs with real `scheduler run` processes: a job added with `jobs add` fires, keeps
firing once a standby took over from a killed leader (no slot twice, none lost), and a
delayed one-off (`--in`) fires once after every node was stopped and started again."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time

import pytest

from .harness import (
    REPO_ROOT,
    Cluster,
    Leader,
    ParkedQueue,
    check_every_slot_once,
    check_no_repeats,
    of_job,
    under_other_tokens,
)

NAMESPACE = "it-runtime"

# The runtime commands as `scheduler jobs ...` runs them (registered here, so this test does
# not depend on how scheduler/cli/__init__.py assembles the app).
CLI = (
    "import typer; from scheduler.cli import runtime; from scheduler.zones import "
    "use_pinned_tzdata; use_pinned_tzdata(); app = typer.Typer(); "
    "app.command('add')(runtime.jobs_add); app.command('remove')(runtime.jobs_remove); app()"
)


def jobs_cli(cluster: Cluster, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CLI, *args, "--config", str(cluster.config_path)],
        capture_output=True, text=True, env=cluster.env, cwd=REPO_ROOT, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def leader(cluster: Cluster, other_than: str = "") -> Leader:
    """The lease holder, read from the lease itself ("<token> <nonce> <node id>")."""

    def holder() -> Leader | None:
        raw: bytes | None = cluster.state().get(f"{NAMESPACE}:lease")  # type: ignore[assignment]
        if raw is None:
            return None
        token, _nonce, node_id = raw.decode().split(" ", 2)
        return None if node_id == other_than else Leader(node_id, int(token))

    return cluster.wait_until(holder, timeout_s=20, what="a leader", interval_s=0.05)


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_a_runtime_job_survives_failover_and_a_one_off_survives_a_restart(
    cluster: Cluster, parked: ParkedQueue
) -> None:
    cluster.configure(namespace=NAMESPACE, lease_ttl="1s", jobs={})
    for node_id in ("n1", "n2"):
        cluster.start_node(node_id)
    first = leader(cluster)

    out = jobs_cli(
        cluster, "add", "r", "--task", "jobs.examples.ping", "--every", "1s", "--queue", "parked"
    )
    added_s = time.time()
    assert out.startswith("added job r (every 1s, next ")
    seen = parked.wait_for(lambda ms: of_job("r", ms), what="r's first fire", timeout_s=10)
    assert min(m.slot_s for m in seen) - added_s <= 2.0  # seen by the leader within a second
    parked.wait_for_slots(["r"], math.ceil(time.time()) + 1, timeout_s=10)

    cluster.signal_leader(first, signal.SIGKILL)
    parked.wait_for(
        lambda ms: under_other_tokens(first.token, of_job("r", ms)),
        what="r fired by the new leader",
        timeout_s=15,
    )
    parked.wait_for_slots(["r"], math.ceil(time.time()) + 2, timeout_s=10)
    messages = of_job("r", parked.messages())
    check_no_repeats(messages, namespace=NAMESPACE)
    first_s, last_s = min(m.slot_s for m in messages), max(m.slot_s for m in messages)
    check_every_slot_once(messages, ["r"], first_s, last_s)
    assert {m.token for m in messages} - {first.token}, "the new leader fired r"

    # A delayed one-off, then every node stops before it is due and starts again.
    out = jobs_cli(
        cluster, "add", "once", "--task", "jobs.examples.ping", "--in", "3s", "--queue", "parked"
    )
    at = out.removeprefix("added job once (at ").split(",")[0]
    for child in cluster.nodes.values():
        if child.alive():
            child.signal(signal.SIGTERM)
    for child in list(cluster.nodes.values()):
        child.wait_exit(10)
    assert of_job("once", parked.messages()) == []
    for node_id in ("n1", "n2"):
        cluster.start_node(node_id, log_name=f"node-{node_id}-restarted")
    fired = parked.wait_for(lambda ms: of_job("once", ms), what="the one-off", timeout_s=15)
    assert [m.slot for m in fired] == [at.replace("+00:00", "Z")]
    parked.wait_for_slots(["r"], math.ceil(time.time()) + 1, timeout_s=10)  # a leader again
    assert len(of_job("once", parked.messages())) == 1
    check_no_repeats(parked.messages(), namespace=NAMESPACE)
