"""/metrics scraped from in-process nodes on a private Redis: exact values after known fires,
leader and standby, what is read from Redis at scrape time, and the per-job bound."""

from __future__ import annotations

import json

from scheduler.store.pauses import pause_jobs
from scheduler.store.reports import ReportWriter
from scheduler.wire import slot_text
from tests.node.conftest import QUEUE
from tests.web.conftest import WebRigFactory, get, label_values, value


def every_second(**extra: object) -> dict[str, object]:
    return {"task": "jobs.examples.ping", "every": "1s", "queue": QUEUE, **extra}


def test_fires_lateness_and_leadership_after_n_fires(web_rig: WebRigFactory) -> None:
    rig = web_rig({"a": every_second(), "b": every_second()})
    rig.lead()
    rig.clock.advance(0.003)  # every tick now lands 4 ms after its slot
    for _ in range(4):
        rig.tick(1.0)
    assert len([f for f in rig.fired() if f[0] == "a"]) == 4
    reply = get(rig.address, "/metrics")
    assert reply.status == 200
    assert reply.content_type.startswith("text/plain; version=0.0.4")
    samples = rig.scrape()
    assert value(samples, "scheduler_job_fires_total", job="a", outcome="enqueued") == 4
    assert value(samples, "scheduler_job_fires_total", job="b", outcome="enqueued") == 4
    assert value(samples, "scheduler_fires_total", outcome="enqueued") == 8
    assert value(samples, "scheduler_fire_lateness_seconds_count") == 8
    assert value(samples, "scheduler_fire_lateness_seconds_bucket", le="0.0025") == 0
    assert value(samples, "scheduler_fire_lateness_seconds_bucket", le="0.005") == 8
    assert abs((value(samples, "scheduler_fire_lateness_seconds_sum") or 0) - 0.032) < 1e-6
    assert value(samples, "scheduler_is_leader") == 1
    assert rig.node.lease.token is not None
    assert value(samples, "scheduler_fencing_token") == rig.node.lease.token
    assert value(samples, "scheduler_lease_renewals_total") == rig.node.lease.renewals == 4
    assert value(samples, "scheduler_jobs") == 2
    assert value(samples, "scheduler_config_info", hash=rig.node.config.hash) == 1
    assert value(samples, "scheduler_build_info", version="0.1.0") == 1
    assert value(samples, "scheduler_scrape_redis_up") == 1


def test_next_fire_is_the_engines_next_slot(web_rig: WebRigFactory) -> None:
    rig = web_rig({"a": every_second(), "slow": {**every_second(), "every": "1h"}})
    rig.lead()
    rig.tick(1.0)
    engine = rig.node.engine
    assert engine is not None
    samples = rig.scrape()
    expected = engine.next_slots(frozenset({"a", "slow"}))
    assert value(samples, "scheduler_job_next_fire_timestamp_seconds", job="a") == expected["a"]
    assert (
        value(samples, "scheduler_job_next_fire_timestamp_seconds", job="slow") == expected["slow"]
    )
    assert expected["slow"] % 3600 == 0
    assert value(samples, "scheduler_next_fire_timestamp_seconds") == engine.next_slot_s()


def test_a_standby_is_not_leader_and_has_no_token(web_rig: WebRigFactory) -> None:
    leader = web_rig({"a": every_second()}, node_id="n1")
    standby = web_rig({"a": every_second()}, node_id="n2")
    leader.lead()
    standby.node.heartbeat.beat()
    standby.node.turn()
    samples = standby.scrape()
    assert value(samples, "scheduler_is_leader") == 0
    assert value(samples, "scheduler_fencing_token") is None
    assert value(leader.scrape(), "scheduler_is_leader") == 1


def test_last_success_and_outbox_depth_are_read_from_redis(web_rig: WebRigFactory) -> None:
    rig = web_rig({"a": every_second(), "b": every_second()})
    ReportWriter(rig.redis, rig.node.keys).add("a", "succeeded", slot_text(1_800_000_000), "t1")
    for n in range(3):
        rig.redis.rpush(rig.node.keys.outbox, json.dumps({"n": n}))
    samples = rig.scrape()
    written = float(rig.redis.hget(rig.node.keys.last_success, "a") or 0)
    assert written > 0
    assert value(samples, "scheduler_job_last_success_timestamp_seconds", job="a") == written
    assert value(samples, "scheduler_job_last_success_timestamp_seconds", job="b") is None
    assert value(samples, "scheduler_outbox_messages") == 3


def test_per_job_series_are_bounded_and_totals_count_every_job(web_rig: WebRigFactory) -> None:
    names = ["e", "d", "c", "b", "a"]
    rig = web_rig({name: every_second() for name in names}, metrics_jobs_max=2)
    rig.lead()
    for name in names:
        ReportWriter(rig.redis, rig.node.keys).add(name, "succeeded", slot_text(1), f"t-{name}")
    rig.tick(1.0)
    rig.tick(1.0)
    samples = rig.scrape()
    assert label_values(samples, "scheduler_job_fires_total", "job") == {"a", "b"}
    assert label_values(samples, "scheduler_job_next_fire_timestamp_seconds", "job") == {"a", "b"}
    assert label_values(samples, "scheduler_job_last_success_timestamp_seconds", "job") == {
        "a",
        "b",
    }
    assert value(samples, "scheduler_fires_total", outcome="enqueued") == 10
    assert value(samples, "scheduler_fire_lateness_seconds_count") == 10
    assert value(samples, "scheduler_jobs") == 5
    assert value(samples, "scheduler_metrics_jobs_labelled") == 2


def test_a_paused_job_counts_as_skipped_beside_one_that_fires(web_rig: WebRigFactory) -> None:
    rig = web_rig({"a": every_second(), "b": every_second()})
    rig.lead()
    pause_jobs(rig.redis, rig.node.keys, ["a"], "test")
    rig.tick(1.0)
    rig.tick(1.0)
    samples = rig.scrape()
    assert value(samples, "scheduler_job_fires_total", job="a", outcome="skipped_paused") == 2
    assert value(samples, "scheduler_job_fires_total", job="a", outcome="enqueued") is None
    assert value(samples, "scheduler_job_fires_total", job="b", outcome="enqueued") == 2
    assert value(samples, "scheduler_fires_total", outcome="skipped_paused") == 2
    assert value(samples, "scheduler_fires_total", outcome="enqueued") == 2
    assert value(samples, "scheduler_slots_skipped_total", reason="paused") == 2
    assert value(samples, "scheduler_fire_lateness_seconds_count") == 2  # b's fires only


def test_a_redis_outage_leaves_out_only_what_redis_holds(web_rig: WebRigFactory) -> None:
    rig = web_rig({"a": every_second()})
    rig.lead()
    rig.tick(1.0)
    rig.redis.shutdown(nosave=True)  # the rig's private server: nothing else uses it
    samples = rig.scrape()
    assert value(samples, "scheduler_scrape_redis_up") == 0
    assert value(samples, "scheduler_outbox_messages") is None
    assert value(samples, "scheduler_job_fires_total", job="a", outcome="enqueued") == 1
    assert value(samples, "scheduler_is_leader") == 1
