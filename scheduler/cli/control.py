"""The operator's fires and pauses: `trigger`, `backfill`, `pause` and `resume`.

Each fire is published from here to the broker (no leader needed) and recorded in history
(scheduler/operator_fire.py); which slots a backfill or a catch-up covers is decided in
scheduler/manual.py. Commands that act on "every job" take a list of job specs, so runtime
jobs join by passing them in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from scheduler.cli import common
from scheduler.cli.common import (
    ConfigOption,
    JsonOption,
    connect,
    fail,
    find_job,
    known_jobs,
    load,
    redis_failed,
)
from scheduler.clock import utc
from scheduler.config import Config
from scheduler.errors import ConfigError, SchedulerError
from scheduler.jobspec import JobSpec
from scheduler.manual import (
    CONFIRM_ABOVE,
    DEFAULT_MAX_SLOTS,
    MAX_SLOTS_LIMIT,
    Fire,
    Plan,
    TooManySlots,
    catchup_range,
    manual_fire,
    needs_confirmation,
    plan_fires,
    reason_problem,
    slot_problem,
    slots_after,
    slots_between,
    whole_second,
    window_problem,
)
from scheduler.operator_fire import (
    OperatorPublisher,
    SendFailed,
    claimed_task_ids,
    fired_slots,
    next_sequence,
    reported_task_ids,
)
from scheduler.store.pauses import (
    ResumeOutcome,
    pause_jobs,
    record_skipped_while_paused,
    resume_jobs,
)
from scheduler.store.running import running_jobs
from scheduler.store.state import StateStore
from scheduler.triggers import count_slots
from scheduler.views import cell, table, to_json
from scheduler.wire import slot_text

NameArgument = Annotated[str | None, typer.Argument(help="The job [or --all]", show_default=False)]
AllOption = Annotated[
    bool, typer.Option("--all", help="Every job: the config's and the runtime jobs.")
]
YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help=f"Do not ask before sending more than {CONFIRM_ABOVE}.")
]
MaxOption = Annotated[
    int,
    typer.Option("--max", min=1, max=MAX_SLOTS_LIMIT, help="Refuse to send more slots than this."),
]


def trigger(
    name: Annotated[str, typer.Argument(help="The job", show_default=False)],
    slot: Annotated[
        str | None, typer.Option("--slot", help="The slot, an ISO 8601 instant [default: now]")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Send even while a run is in progress (overlap=skip).")
    ] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fire a job now, under a task id of its own (never a scheduled slot's)."""
    cfg = load(config)
    job = _job(cfg, name)
    now_s = common.clock.time()
    slot_s = (
        int(now_s)
        if slot is None
        else whole_second(common.parse_instant(slot, "--slot", job.timezone))
    )
    if (problem := slot_problem(slot_s)) is not None:
        fail(f"--slot: {problem}", 2)
    store = connect(cfg)
    try:
        if job.overlap == "skip" and not force:
            running = running_jobs(store.client, store.keys, [name], now_s)
            if name in running:
                fail(
                    f"job {name} is still running (task {running[name]}) and its overlap is "
                    '"skip": not triggered (--force sends it anyway)',
                    1,
                )
        fire = manual_fire(
            store.keys.namespace, name, slot_s, next_sequence(store.client, store.keys)
        )
    except SchedulerError as exc:
        redis_failed(exc)
    _send(cfg, store, [fire], [job])
    if as_json:
        typer.echo(
            to_json({"job": name, "slot": fire.slot, "task_id": fire.task_id, "kind": fire.kind})
        )
    else:
        typer.echo(f"triggered job {name}: task {fire.task_id} (slot {fire.slot})")


def backfill(
    name: Annotated[str, typer.Argument(help="The job", show_default=False)],
    first: Annotated[str, typer.Option("--from", help="First instant (ISO 8601), included")],
    last: Annotated[
        str, typer.Option("--to", help="Last instant (ISO 8601), included; not later than now")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be sent; send nothing.")
    ] = False,
    yes: YesOption = False,
    max_slots: MaxOption = DEFAULT_MAX_SLOTS,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fire every slot of a past range under the slot's own task id; slots already fired are
    skipped."""
    cfg = load(config)
    job = _job(cfg, name)
    start = common.parse_instant(first, "--from", job.timezone)
    end = common.parse_instant(last, "--to", job.timezone)
    if (problem := window_problem(start, end, common.clock.time())) is not None:
        fail(problem, 2)
    try:
        slots = slots_between(job, start, end, max_slots)
    except TooManySlots as exc:
        fail(_too_many(f"backfill of job {name}", exc, "narrow --from/--to"), 2)
    store = connect(cfg)
    plan = _plan(store, job, slots, "backfill")
    span = f"[{start.isoformat()}, {end.isoformat()}]"
    summary = {"job": name, "kind": "backfill", "from": start.isoformat(), "to": end.isoformat()}
    if dry_run:
        headline = (
            f"backfill job {name}: {len(slots)} slots in {span}: would send {len(plan.send)}, "
            f"skip {len(plan.skipped)}"
        )
        _show_plan(plan, {**summary, "dry_run": True}, as_json, headline)
        return
    question = f"send {len(plan.send)} backfill fires of job {name} {span}?"
    _confirm(len(plan.send), yes, question, "backfill cancelled: nothing sent")
    _send(cfg, store, plan.send, [job])
    if as_json:
        _show_plan(plan, {**summary, "dry_run": False}, as_json, "")
        return
    typer.echo(
        f"backfilled job {name}: sent {len(plan.send)}{_span(plan.send)}, skipped "
        f"{len(plan.skipped)} already fired, of {len(slots)} slots in {span}"
    )


def pause(
    name: NameArgument = None,
    all_jobs: AllOption = False,
    reason: Annotated[str, typer.Option("--reason", help="Why, shown in `jobs show`.")] = "",
    config: ConfigOption = None,
) -> None:
    """Stop sending a job's slots (they are skipped and counted) until it is resumed."""
    if (problem := reason_problem(reason)) is not None:
        fail(problem, 2)
    cfg = load(config)
    jobs = _chosen(cfg, name, all_jobs)
    store = connect(cfg)
    try:
        outcomes = pause_jobs(store.client, store.keys, [job.name for job in jobs], reason)
    except SchedulerError as exc:
        redis_failed(exc)
    for outcome in outcomes:
        why = f" ({cell(outcome.record.reason)})" if outcome.record.reason else ""
        if outcome.already:
            since = slot_text(int(outcome.record.since_s))
            typer.echo(f"{outcome.job}: already paused since {since}{why}")
        else:
            typer.echo(f"{outcome.job}: paused{why}")


def resume(
    name: NameArgument = None,
    all_jobs: AllOption = False,
    catchup: Annotated[
        bool,
        typer.Option(
            "--catchup/--from-now",
            help="Fire the slots skipped while paused, or only those from now on.",
        ),
    ] = False,
    yes: YesOption = False,
    max_slots: MaxOption = DEFAULT_MAX_SLOTS,
    config: ConfigOption = None,
) -> None:
    """Send a paused job's slots again: from now on, or (--catchup) also those it skipped."""
    cfg = load(config)
    jobs = _chosen(cfg, name, all_jobs)
    store = connect(cfg)
    names = [job.name for job in jobs]
    by_name = {job.name: job for job in jobs}
    try:
        if catchup:  # check the bounds and ask before anything changes
            preview = _catchup_plans(
                store,
                by_name,
                resume_jobs(store.client, store.keys, names, write=False),
                max_slots,
                "nothing resumed",
            )
            count = sum(len(plan.send) for plan in preview.values())
            question = f"resume and send {count} slots skipped while paused?"
            _confirm(count, yes, question, "resume cancelled: nothing changed")
        outcomes = resume_jobs(store.client, store.keys, names)
    except SchedulerError as exc:
        redis_failed(exc)
    resumed = [o for o in outcomes if o.was_paused]
    if not resumed:
        typer.echo(f"{name}: was not paused" if name is not None else "no job was paused")
        return
    for outcome in resumed:
        typer.echo(f"{outcome.job}: resumed")
    if not catchup:
        _record_skipped(store, by_name, resumed)
        return
    # The exact ranges, as the resume read them; the preview was asked a moment earlier.
    plans = _catchup_plans(store, by_name, resumed, max_slots, "resumed, but none sent")
    _send(cfg, store, [fire for plan in plans.values() for fire in plan.send], jobs)
    unreadable = False
    for outcome in resumed:
        plan = plans.get(outcome.job)
        if outcome.problem is not None:
            unreadable = True
            typer.echo(f"scheduler: {outcome.job}: cannot catch up: {outcome.problem}", err=True)
        elif outcome.record is None:
            typer.echo(f"{outcome.job}: no pause record: nothing to catch up")
        elif plan is None or not (plan.send or plan.skipped):
            typer.echo(f"{outcome.job}: nothing to catch up")
        else:
            typer.echo(
                f"{outcome.job}: caught up {len(plan.send)} slots skipped while paused"
                f"{_span(plan.send)}{_skipped(plan)}"
            )
    if unreadable:
        raise typer.Exit(1)


def _record_skipped(
    store: StateStore, jobs: dict[str, JobSpec], outcomes: Sequence[ResumeOutcome]
) -> None:
    """Resumed from now on: what each job skipped while paused becomes one range, reason
    "paused", in the missed stream (a failure to write it changes nothing else)."""
    for outcome in outcomes:
        record = outcome.record
        if record is None or outcome.problem is not None:
            continue
        bounds = catchup_range(record.watermark_s, record.since_s, outcome.watermark_s)
        if bounds is None:
            continue
        trigger = jobs[outcome.job].trigger
        first = trigger.next_slot(utc(bounds[0]))
        last = trigger.previous_slot(utc(bounds[1]))
        if first is None or last is None or last < first:
            continue
        count = count_slots(trigger, utc(bounds[0]), utc(bounds[1]))
        try:
            record_skipped_while_paused(
                store.client, store.keys, outcome.job, int(first.timestamp()),
                int(last.timestamp()), count,
            )  # fmt: skip
        except SchedulerError as exc:
            typer.echo(f"scheduler: {outcome.job}: skipped slots not recorded: {exc}", err=True)


def _catchup_plans(
    store: StateStore,
    jobs: dict[str, JobSpec],
    outcomes: Sequence[ResumeOutcome],
    max_slots: int,
    consequence: str,
) -> dict[str, Plan]:
    """The catch-up of each paused job with a readable record; exit 2 when they send more
    than `max_slots` in all."""
    plans: dict[str, Plan] = {}
    for outcome in outcomes:
        record = outcome.record
        if not outcome.was_paused or record is None or outcome.problem is not None:
            continue
        bounds = catchup_range(record.watermark_s, record.since_s, outcome.watermark_s)
        if bounds is None:
            plans[outcome.job] = Plan([], [])
            continue
        job = jobs[outcome.job]
        try:
            slots = slots_after(job, bounds[0], bounds[1], max_slots)
        except TooManySlots as exc:
            fail(_too_many(f"catch-up of job {job.name}", exc, consequence), 2)
        plans[outcome.job] = _plan(store, job, slots, "catchup")
    total = sum(len(plan.send) for plan in plans.values())
    if total > max_slots:
        fail(_too_many("catch-up", TooManySlots(total, max_slots), consequence), 2)
    return plans


def _plan(store: StateStore, job: JobSpec, slots: Sequence[int], kind: str) -> Plan:
    """Slots to send and slots skipped as fired already (history, a worker's run claim or its
    reports)."""
    namespace = store.keys.namespace
    try:
        fired = fired_slots(store.client, store.keys, job.name) if slots else set()
        reported = reported_task_ids(store.client, store.keys, job.name) if slots else set()
        unfired = plan_fires(namespace, job.name, slots, kind, fired, reported=reported)
        claimed = claimed_task_ids(store.client, store.keys, [f.task_id for f in unfired.send])
    except SchedulerError as exc:
        redis_failed(exc)
    return plan_fires(namespace, job.name, slots, kind, fired, claimed, reported)


def _send(cfg: Config, store: StateStore, fires: Sequence[Fire], jobs: Sequence[JobSpec]) -> None:
    """Publish and record `fires`, or exit 1 saying how many went out."""
    if not fires:
        return
    try:
        publisher = OperatorPublisher(cfg, store.client)
    except ConfigError as exc:
        fail(str(exc), 2)
    try:
        publisher.send(fires, {job.name: job for job in jobs})
    except SendFailed as exc:
        fail(f"{exc}; {exc.sent} of {len(fires)} sent, the rest not", 1)
    except SchedulerError as exc:
        fail(f"sent, but not recorded in history: {exc}", 1)
    finally:
        publisher.close()


def _confirm(count: int, yes: bool, question: str, refused: str) -> None:
    if not needs_confirmation(count, yes):
        return
    try:
        agreed = typer.confirm(question, default=False, err=True)
    except typer.Abort:  # no answer (end of input)
        agreed = False
    if not agreed:
        fail(refused, 1)


def _job(cfg: Config, name: str) -> JobSpec:
    return find_job(cfg, name)


def config_jobs(cfg: Config) -> list[JobSpec]:
    """The jobs `--all` acts on: the config's and the runtime jobs."""
    return [job for _, (job, _) in sorted(known_jobs(cfg, connect(cfg)).items())]


def _chosen(cfg: Config, name: str | None, all_jobs: bool) -> list[JobSpec]:
    if name is not None and all_jobs:
        fail("give a job name or --all, not both", 2)
    if name is None and not all_jobs:
        fail("give a job name, or --all", 2)
    return config_jobs(cfg) if all_jobs else [_job(cfg, str(name))]


def _show_plan(plan: Plan, summary: dict[str, object], as_json: bool, headline: str) -> None:
    if as_json:
        counts = {"send": len(plan.send), "skipped": len(plan.skipped)}
        typer.echo(to_json({**summary, **counts, "slots": plan.records()}))
        return
    typer.echo(headline)
    if plan.send or plan.skipped:
        typer.echo(table(plan.records(), ["slot", "task_id", "action", "reason"]))


def _too_many(what: str, exc: TooManySlots, remedy: str) -> str:
    return f"{what} covers {exc.count} slots, more than --max {exc.limit}: {remedy}"


def _span(fires: Sequence[Fire]) -> str:
    if not fires:
        return ""
    return f" ({fires[0].slot})" if len(fires) == 1 else f" ({fires[0].slot} .. {fires[-1].slot})"


def _skipped(plan: Plan) -> str:
    return f", skipped {len(plan.skipped)} already fired" if plan.skipped else ""
