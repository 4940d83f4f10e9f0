"""Secured Redis: TLS (rediss://), an ACL user whose password comes from a file, and no
password in any log, status or error line."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.conftest import free_port, missing_server
from tests.integration.harness import (
    Children,
    Cluster,
    ParkedQueue,
    check_every_slot_once,
    every_second,
    run_cli,
    wait_until,
)

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-Pa55"


@dataclass(frozen=True)
class Server:
    url: str  # what a client, and the scheduler's config, uses
    client: redis.Redis


def _start(children: Children, name: str, arguments: list[str], url: str, **client: str) -> Server:
    binary = shutil.which("redis-server")
    if binary is None:
        missing_server("redis-server")
    children.start(name, [binary, "--save", "", "--appendonly", "no", *arguments], {})
    server = Server(url, redis.Redis.from_url(url, socket_timeout=2, **client))  # type: ignore[arg-type]

    def answers() -> bool:
        try:
            return bool(server.client.ping())
        except redis.RedisError:
            return False

    wait_until(answers, timeout_s=10, what=f"{name} to answer PING")
    return server


@pytest.fixture
def tls_redis(children: Children, tmp_path: Path) -> Server:
    if shutil.which("openssl") is None:
        missing_server("openssl")
    certs = tmp_path / "certs"
    certs.mkdir()

    def openssl(*arguments: str) -> None:
        subprocess.run(["openssl", *arguments], cwd=certs, check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=scheduler-test-ca",
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    )
    (certs / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "san.ext")  # fmt: skip
    port = free_port()
    url = f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=required&ssl_ca_certs={certs / 'ca.crt'}"
    arguments = [
        "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
        "--tls-cert-file", str(certs / "server.crt"), "--tls-key-file", str(certs / "server.key"),
        "--tls-ca-cert-file", str(certs / "ca.crt"), "--tls-auth-clients", "no",
    ]  # fmt: skip
    return _start(children, "redis-tls", arguments, url)


@pytest.fixture
def acl_redis(children: Children) -> Server:
    """Only user `app` may log in, with PASSWORD; the default user is off."""
    port = free_port()
    arguments = [
        "--port", str(port), "--bind", "127.0.0.1",
        "--user", "default", "off",
        "--user", "app", "on", f">{PASSWORD}", "~*", "&*", "+@all",
    ]  # fmt: skip
    url = f"redis://app@127.0.0.1:{port}/0"
    return _start(children, "redis-acl", arguments, url, password=PASSWORD)


class SecretCluster(Cluster):
    """A cluster whose every process reads the Redis password from a file, as systemd would
    hand it over with LoadCredential=."""

    secret_file: Path

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, "SCHEDULER_REDIS_PASSWORD_FILE": str(self.secret_file)}


def fires_every_slot(cluster: Cluster, queue: ParkedQueue) -> None:
    cluster.bring_up("n1")
    start = int(time.time()) + 1
    messages = queue.wait_for_slots(["a"], start + 3)
    check_every_slot_once(messages, ["a"], start, start + 3)


def test_tls_for_state_and_broker(children: Children, tls_redis: Server, tmp_path: Path) -> None:
    cluster = Cluster(children, tmp_path / "scheduler.toml", tls_redis.url)
    cluster.configure(namespace="tls", jobs={"a": every_second()})
    fires_every_slot(cluster, ParkedQueue(tls_redis.client, on_timeout=children.log_tails))
    status = cluster.status()
    assert status["leader"] == "n1"
    assert status["atomic_enqueue"] is True


def test_acl_user_with_password_file_and_no_password_anywhere(
    children: Children, acl_redis: Server, tmp_path: Path
) -> None:
    secret = tmp_path / "redis-password"
    secret.write_text(PASSWORD + "\n")
    cluster = SecretCluster(children, tmp_path / "scheduler.toml", acl_redis.url)
    cluster.secret_file = secret
    cluster.configure(namespace="acl", jobs={"a": every_second()})
    assert PASSWORD not in cluster.config_path.read_text()
    fires_every_slot(cluster, ParkedQueue(acl_redis.client, on_timeout=children.log_tails))

    outputs = [
        cluster.cli("status", "--json").stdout,
        cluster.cli("status").stdout,
        cluster.cli("jobs", "list").stdout,
        cluster.nodes["n1"].log_text(),
    ]
    wrong = {
        **cluster.env,
        "SCHEDULER_REDIS_PASSWORD_FILE": "",
        "SCHEDULER_REDIS_PASSWORD": "n0t-it",
    }
    refused = run_cli(["status"], env=wrong)
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith("scheduler: cannot reach Redis at redis://app:***@")
    assert len(refused.stderr.strip().splitlines()) == 1
    outputs += [refused.stdout, refused.stderr]
    assert all(PASSWORD not in text and "n0t-it" not in text for text in outputs)
