"""/healthz and /readyz, and the listener's own rules (404, 405, HEAD, a port in use), on
in-process nodes; then health through a failover with real `scheduler run` processes."""

from __future__ import annotations

import signal
import socket

import pytest

from scheduler.errors import ConfigError
from scheduler.http_server import StatusServer
from tests.conftest import RedisServer, free_port
from tests.integration.harness import PARKED, Cluster, every_second
from tests.web.conftest import Reply, WebRigFactory, get, parse, value

JOBS = {"a": every_second()}


def test_leader_and_standby_are_ready_and_alive(web_rig: WebRigFactory) -> None:
    leader = web_rig(JOBS, node_id="n1")
    standby = web_rig(JOBS, node_id="n2")
    leader.lead()
    standby.node.heartbeat.beat()
    standby.node.turn()
    assert get(leader.address, "/readyz") == Reply(200, "text/plain; charset=utf-8", "leader\n")
    assert get(standby.address, "/readyz").body == "standby\n"
    assert get(standby.address, "/healthz") == Reply(200, "text/plain; charset=utf-8", "ok\n")


def test_a_node_whose_clock_was_never_measured_is_alive_but_not_ready(
    web_rig: WebRigFactory,
) -> None:
    rig = web_rig(JOBS)  # no heartbeat yet: not joined, clock not measured
    reply = get(rig.address, "/readyz")
    assert reply.status == 503
    assert reply.body.count("\n") == 1
    assert reply.body.startswith(("not joined", "clock not agreed"))
    assert get(rig.address, "/healthz").status == 200


def test_a_stalled_loop_is_neither_alive_nor_ready(web_rig: WebRigFactory) -> None:
    rig = web_rig(JOBS)
    rig.node.heartbeat.beat()
    rig.clock.advance(10.0)  # three lease TTLs (2 s each) without a turn
    healthz = get(rig.address, "/healthz")
    assert (healthz.status, healthz.body) == (
        503,
        "the main loop has not turned for 3 lease TTLs\n",
    )
    assert get(rig.address, "/readyz").status == 503


def test_other_paths_and_methods_are_refused(web_rig: WebRigFactory) -> None:
    rig = web_rig(JOBS)
    assert get(rig.address, "/nope").status == 404
    assert get(rig.address, "/metrics", method="POST").status == 405
    assert get(rig.address, "/healthz", method="DELETE").status == 405
    head = get(rig.address, "/healthz", method="HEAD")
    assert (head.status, head.body) == (200, "")
    page = get(rig.address, "/")
    assert page.status in (200, 500)  # the page is someone else's; it never takes us down
    assert get(rig.address, "/healthz").status == 200


def test_a_port_in_use_is_one_config_error_line(web_rig: WebRigFactory) -> None:
    rig = web_rig(JOBS)
    host, port = rig.address
    second = StatusServer(rig.node, (host, port))
    with pytest.raises(ConfigError) as caught:
        second.start()
    assert caught.value.problems == [f"http_listen {host}:{port}: Address already in use"]


def test_off_means_no_socket(web_rig: WebRigFactory) -> None:
    rig = web_rig(JOBS)
    off = StatusServer(rig.node, None)
    off.start()
    assert off.address is None
    off.stop()


# -- real processes -------------------------------------------------------------------------


def readyz(port: int) -> str | None:
    """The /readyz body as "<status> <text>", None while nothing answers."""
    try:
        reply = get(("127.0.0.1", port), "/readyz")
    except OSError:
        return None
    return f"{reply.status} {reply.body.strip()}"


def is_leader(port: int) -> float | None:
    return value(parse(get(("127.0.0.1", port), "/metrics").body), "scheduler_is_leader")


def test_health_through_a_failover_and_a_redis_outage(
    cluster: Cluster, redis_server: RedisServer
) -> None:
    cluster.configure(namespace="web", jobs={"a": every_second(queue=PARKED)}, lease_ttl="1s")
    ports = {"n1": free_port(), "n2": free_port()}
    for node_id in ("n1", "n2"):
        env = {"SCHEDULER_HTTP_LISTEN": f"127.0.0.1:{ports[node_id]}"}
        cluster.start_node(node_id, env=env)
        if node_id == "n1":  # n1 leads before n2 starts, so each one's role is known
            cluster.wait_until(
                lambda: readyz(ports["n1"]) == "200 leader", timeout_s=30, what="n1 leading"
            )
    cluster.wait_until(
        lambda: readyz(ports["n2"]) == "200 standby", timeout_s=30, what="n2 standing by"
    )
    assert is_leader(ports["n1"]) == 1
    assert is_leader(ports["n2"]) == 0

    cluster.nodes["n1"].signal(signal.SIGKILL)
    cluster.wait_until(lambda: is_leader(ports["n2"]) == 1, timeout_s=15, what="n2 leading")
    assert readyz(ports["n2"]) == "200 leader"

    redis_server.client().shutdown(nosave=True)

    def not_ready() -> str | None:
        found = readyz(ports["n2"])
        return found if found is not None and found.startswith("503") else None

    found = cluster.wait_until(not_ready, timeout_s=15, what="n2 not ready without Redis")
    assert found.startswith("503 not joined"), found
    health = get(("127.0.0.1", ports["n2"]), "/healthz")
    assert (health.status, health.body) == (200, "ok\n")
    samples = parse(get(("127.0.0.1", ports["n2"]), "/metrics").body)
    assert value(samples, "scheduler_scrape_redis_up") == 0
    assert value(samples, "scheduler_is_leader") == 0


def test_scheduler_run_with_its_port_in_use_exits_2_with_one_line(cluster: Cluster) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cluster.configure(namespace="web", jobs=JOBS)
        child = cluster.start_node("n1", env={"SCHEDULER_HTTP_LISTEN": f"127.0.0.1:{port}"})
        code = child.wait_exit(timeout_s=30)
    assert code == 2
    assert child.log_text().strip().splitlines()[-1] == (
        f"http_listen 127.0.0.1:{port}: Address already in use"
    ), child.tail()
    assert "Traceback" not in child.log_text()
