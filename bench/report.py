"""Render docs/performance.md and docs/performance-burst.png from bench/results/.

    bench/.venv-peers/bin/python bench/report.py

For each measurement the full run's file is used when there is one, else the quick run's;
the page says which. The prose lives in bench/performance.md.in, with ``@@name@@`` markers
where the tables go; nothing here measures anything.
"""

from __future__ import annotations

import json
import math
from typing import Any

from common import BENCH_DIR, OWN_COMMANDS, REPO_ROOT

RESULTS = BENCH_DIR / "results"
TEMPLATE = BENCH_DIR / "performance.md.in"
PAGE = REPO_ROOT / "docs" / "performance.md"
CHART = REPO_ROOT / "docs" / "performance-burst.png"
OURS = "scheduler"
PEERS = ("celery beat", "RedBeat")
SCHEDULERS = (OURS, *PEERS)
NONE = "\N{EN DASH}"  # an empty cell
TIMES = "\N{MULTIPLICATION SIGN}"


def load(name: str) -> tuple[dict[str, Any] | None, str]:
    """The result of one measurement and which run it came from."""
    for mode in ("full", "quick"):
        path = RESULTS / mode / f"{name}.json"
        if path.exists():
            data = json.loads(path.read_text())
            if "error" not in data:
                return data, mode
    return None, "none"


def seconds(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NONE
    if value >= 10:
        return f"{value:.1f} s"
    if value >= 1:
        return f"{value:.2f} s"
    return f"{value * 1000:.{max(0, digits - 2)}f} ms" if value < 0.1 else f"{value:.{digits}f} s"


def ratio(theirs: float | None, mine: float | None) -> str:
    if theirs is None or mine is None or mine <= 0:
        return NONE
    return f"{theirs / mine:,.0f}{TIMES}" if theirs / mine >= 10 else f"{theirs / mine:.1f}{TIMES}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def source(mode: str, data: dict[str, Any] | None) -> str:
    if data is None:
        return "_Not measured yet: run `make bench`._"
    return (
        f"_From the {mode} run of {data.get('measured_at', '?')} (scheduler "
        f"{data.get('scheduler_version', '?')}, load average before: "
        f"{', '.join(str(x) for x in data.get('load_average_before', []))})._"
    )


# --- burst ----------------------------------------------------------------------------------


def _burst_cell(run: dict[str, Any] | None) -> str:
    if run is None:
        return NONE
    if run.get("last_s") is None:
        return f"**{run['enqueued_within_window']:,} of {run['n']:,}** in {run['window_s']:.0f} s"
    return seconds(run["last_s"])


def burst_section() -> str:
    data, mode = load("burst")
    if data is None:
        return source(mode, data)
    runs = data["schedulers"]
    sizes = sorted({int(n) for by_n in runs.values() for n in by_n})
    rows = []
    for n in sizes:
        mine = runs.get(OURS, {}).get(str(n))
        row = [f"{n:,}", _burst_cell(mine)]
        if mine is not None:
            late = mine["lateness"]
            row.append(f"{seconds(late['p50_s'])} / {seconds(late['p99_s'])}")
            row.append(str(mine.get("messages_per_s") or NONE))
        else:
            row += [NONE, NONE]
        for peer in PEERS:
            theirs = runs.get(peer, {}).get(str(n))
            row.append(_burst_cell(theirs))
            if theirs is not None and mine is not None and theirs.get("run") != mine.get("run"):
                row.append("other runs")
            elif theirs is not None and theirs.get("last_s") is None:
                row.append("> " + ratio(theirs["window_s"], (mine or {}).get("last_s")))
            else:
                row.append(
                    ratio((theirs or {}).get("last_s"), (mine or {}).get("last_s"))
                    if theirs
                    else NONE
                )
        rows.append(row)
    header = [
        "N due at once",
        "ours: last message",
        "ours: lateness p50 / p99",
        "ours: msg/s",
        "celery beat: last message",
        "ratio",
        "RedBeat: last message",
        "ratio",
    ]
    detail = []
    for name in SCHEDULERS:
        for n in sizes:
            run = runs.get(name, {}).get(str(n))
            if run is None:
                continue
            late = run["lateness"]
            detail.append(
                [
                    name,
                    f"{n:,}",
                    f"{run['enqueued_within_window']:,} / {n:,}",
                    seconds(run.get("first_s")),
                    seconds(late["p50_s"]),
                    seconds(late["p99_s"]),
                    seconds(late["max_s"]),
                    f"{run['ready_s']:.2f} s",
                    f"{run['cpu_s']:.2f} s",
                    seconds(run.get("redis_cpu_s")),
                    f"{run['rss_peak_mib']:.0f} MiB",
                    _repeats(run),
                ]
            )
    detail_header = [
        "scheduler",
        "N",
        "enqueued in window",
        "first",
        "p50",
        "p99",
        "max",
        "ready after spawn",
        "its CPU during burst",
        "Redis CPU",
        "peak RSS",
        "repeated / missing",
    ]
    versions = {r.get("scheduler_version") for r in runs.get(OURS, {}).values()} - {None}
    versions_note = ""
    if len(versions) > 1:
        versions_note = "\n\nOur code changed during the run (others work in the same tree): " + (
            "; ".join(
                f"N={int(n):,}: {r.get('scheduler_version')}"
                for n, r in sorted(runs.get(OURS, {}).items(), key=lambda kv: int(kv[0]))
            )
        )
    runs_note = ""
    ours_runs = {n: r.get("runs_last_s") for n, r in runs.get(OURS, {}).items()}
    if any(ours_runs.values()):
        runs_note = "\n\nOur runs per N (the median is shown): " + "; ".join(
            f"N={int(n):,}: " + ", ".join(seconds(v) for v in values)
            for n, values in sorted(ours_runs.items(), key=lambda kv: int(kv[0]))
            if values
        )
    return "\n\n".join(
        [
            source(mode, data),
            table(header, rows),
            "Each message's lateness, from the slot to when the collector saw it:",
            table(detail_header, detail) + runs_note + versions_note,
        ]
    )


def _repeats(run: dict[str, Any]) -> str:
    repeated = run.get("repeated", 0)
    missing = run.get("missing")
    return f"{repeated} / {missing}" if missing is not None else f"{repeated} / {NONE}"


def chart() -> bool:
    data, _ = load("burst")
    if data is None:
        return False
    import matplotlib  # noqa: PLC0415 (only the chart needs it)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    styles = {
        OURS: ("o-", "tab:green"),
        "celery beat": ("s-", "tab:red"),
        "RedBeat": ("^-", "tab:blue"),
    }
    for name in SCHEDULERS:
        runs = data["schedulers"].get(name, {})
        points = sorted((int(n), run) for n, run in runs.items())
        done = [(n, run["last_s"]) for n, run in points if run.get("last_s") is not None]
        marker, colour = styles[name]
        if done:
            axes.plot(*zip(*done, strict=True), marker, color=colour, label=name)
        for n, run in points:
            if run.get("last_s") is None:
                axes.plot([n], [run["window_s"]], "x", color=colour, markersize=10)
                axes.annotate(
                    f"{run['enqueued_within_window']:,} of {n:,}\nafter {run['window_s']:.0f} s",
                    (n, run["window_s"]),
                    textcoords="offset points",
                    xytext=(-70, -28),
                    fontsize=8,
                    color=colour,
                )
    targets = [(1_000, 0.06), (10_000, 0.5), (100_000, 5.0)]  # the issue's, for ours
    axes.plot(*zip(*targets, strict=True), "_", color="black", markersize=14, label="target (ours)")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("jobs due at the same instant (N)")
    axes.set_ylabel("slot → last message in Redis (s)")
    axes.set_title("Time to enqueue a burst (lower is better)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(CHART)
    plt.close(figure)
    return True


# --- precision ------------------------------------------------------------------------------


def precision_section() -> str:
    data, mode = load("precision")
    if data is None:
        return source(mode, data)
    runs = data["schedulers"]
    rows = []
    for n, run in sorted(runs.get(OURS, {}).items(), key=lambda kv: int(kv[0])):
        late, whole = run["lateness"], run["slot_enqueued"]
        rows.append(
            [
                OURS,
                f"{int(n):,} every 1 s for {run['duration_s']} s",
                f"{run['enqueued']:,} / {run['expected']:,}",
                f"{run['missing']} / {run['repeated']}",
                f"{seconds(late['p50_s'])} / {seconds(late['p99_s'])} / {seconds(late['max_s'])}",
                f"{seconds(whole['p50_s'])} / {seconds(whole['max_s'])}",
                f"{run['slots_within_0_1_s']} / {run['slots']}",
                f"{run['cpu_s_per_min']:.2f} s",
            ]
        )
    for peer in PEERS:
        for n, run in sorted(runs.get(peer, {}).items(), key=lambda kv: int(kv[0])):
            gap = run["pass_gap_from_1s"]
            rows.append(
                [
                    peer,
                    f"{int(n):,} every 1 s for {run['duration_s']} s",
                    f"{run['enqueued']:,} / {run['expected']:,}",
                    f"short by {run['missing']:,} / {NONE}",
                    "no slot in the message",
                    f"{run['enqueued'] / run['duration_s']:,.0f} msg/s; "
                    + (
                        f"passes start ±{seconds(gap['p99_s'])} from 1 s (p99)"
                        if gap["count"]
                        else "one continuous pass"
                    ),
                    NONE,
                    f"{run['cpu_s_per_min']:.2f} s",
                ]
            )
    header = [
        "scheduler",
        "jobs",
        "enqueued / due",
        "missing / repeated",
        "lateness p50 / p99 / max",
        "whole slot enqueued p50 / max",
        "slots ≤ 0.1 s",
        "CPU per minute",
    ]
    return "\n\n".join([source(mode, data), table(header, rows)])


# --- failover -------------------------------------------------------------------------------


def failover_section() -> str:
    data, mode = load("failover")
    if data is None:
        return source(mode, data)
    rows = []
    for name in (OURS, "RedBeat"):
        measured = data["schedulers"].get(name)
        if measured is None:
            continue
        for kind, what in (("SIGKILL", "unplanned (SIGKILL)"), ("SIGTERM", "planned (SIGTERM)")):
            got = measured[kind]
            gap = got["gap"]
            silence = got.get("longest_silence") or {}
            rows.append(
                [
                    name,
                    what,
                    str(got["rounds"])
                    + (f" ({got['failed_rounds']} never)" if got.get("failed_rounds") else ""),
                    f"{seconds(gap['p50_s'])} / {seconds(gap['max_s'])}",
                    f"{seconds(silence.get('p50_s'))} / {seconds(silence.get('max_s'))}",
                    seconds(got.get("worst_slot_lateness_s")),
                ]
            )
    header = [
        "scheduler",
        "failover",
        "rounds",
        "no leader p50 / max",
        "queue silent p50 / max",
        "latest slot around it",
    ]
    mine = data["schedulers"][OURS]
    notes = [
        f"Ours: {mine['jobs']} jobs every second, lease_ttl {mine['lease_ttl']}: "
        f"{mine['slots_expected']:,} (job, slot) pairs in the run, "
        f"**{mine['slots_missing']} missing, {mine['slots_repeated']} repeated**."
    ]
    red = data["schedulers"].get("RedBeat")
    if red is not None:
        notes.append(
            f"RedBeat: {red['jobs']} interval entries of 1 s, tuned: {red['settings']}; "
            "its messages name no slot, so what was missed or repeated cannot be counted."
        )
    return "\n\n".join([source(mode, data), table(header, rows), " ".join(notes)])


# --- idle and scaling -----------------------------------------------------------------------


def idle_section() -> str:
    data, mode = load("idle")
    if data is None:
        return source(mode, data)
    rows = []
    for name in SCHEDULERS:
        for run in data["schedulers"].get(name, []):
            if "error" in run:
                rows.append([name, f"{run['n']:,}", f"{run['distinct']:,}", run["error"]])
                continue
            busiest = ", ".join(
                f"{name} {rate:g}"
                for name, rate in run["redis_busiest"].items()
                if rate > 0 and name not in OWN_COMMANDS
            )
            rows.append(
                [
                    name,
                    f"{run['n']:,}",
                    f"{run['distinct']:,}",
                    f"{run['startup_s']:.2f} s",
                    f"{run['cpu_s_per_min']:.2f} s",
                    f"{run['rss_peak_mib']:.0f} / {run['rss_mib']:.0f} MiB",
                    f"{run['redis_commands_per_s']:g}",
                    busiest or NONE,
                    f"{run['redis_used_mib']:.1f} MiB",
                ]
            )
    header = [
        "scheduler",
        "jobs",
        "distinct expressions",
        "start-up",
        "CPU per minute",
        "RSS peak / now",
        "Redis cmd/s",
        "busiest commands (/s)",
        "Redis memory",
    ]
    return "\n\n".join([source(mode, data), table(header, rows)])


# --- targets --------------------------------------------------------------------------------


def targets_section() -> str:
    """The issue's targets beside what was measured; a blank where nothing was."""
    burst, _ = load("burst")
    precision, _ = load("precision")
    failover, _ = load("failover")
    idle, _ = load("idle")
    rows: list[list[str]] = []

    def burst_row(n: int, limit_s: float) -> None:
        run = (burst or {}).get("schedulers", {}).get(OURS, {}).get(str(n))
        got = run.get("last_s") if run else None
        rows.append(
            [
                f"{n:,} due at once: all enqueued",
                f"≤ {seconds(limit_s)}",
                seconds(got),
                _met(got, limit_s),
            ]
        )

    burst_row(1_000, 0.06)
    burst_row(10_000, 0.5)
    burst_row(100_000, 5.0)
    mine = (burst or {}).get("schedulers", {}).get(OURS, {}).get("10000")
    red = (burst or {}).get("schedulers", {}).get("RedBeat", {}).get("10000")
    if mine and red and mine.get("run") == red.get("run"):
        theirs = red.get("last_s") or red["window_s"]
        factor = theirs / mine["last_s"] if mine.get("last_s") else None
        rows.append(
            [
                "10,000 at once vs RedBeat",
                f"≥ 40{TIMES}",
                f"{factor:,.0f}{TIMES}" if factor else NONE,
                _met(-(factor or 0), -40),
            ]
        )
    small = (precision or {}).get("schedulers", {}).get(OURS, {}).get("20")
    large = (precision or {}).get("schedulers", {}).get(OURS, {}).get("1000")
    p99 = small["lateness"]["p99_s"] if small else None
    rows.append(["20 jobs every 1 s: lateness p99", "≤ 10 ms", seconds(p99), _met(p99, 0.01)])
    whole = large["slot_enqueued"]["max_s"] if large else None
    rows.append(
        ["1,000 jobs every 1 s: each slot enqueued", "≤ 0.1 s", seconds(whole), _met(whole, 0.1)]
    )
    missing = None
    if small and large:
        missing = small["missing"] + large["missing"]
    rows.append(
        ["… slots missing", "0", NONE if missing is None else str(missing), _met(missing, 0)]
    )
    fo = (failover or {}).get("schedulers", {}).get(OURS)
    kill = fo["SIGKILL"]["gap"]["max_s"] if fo else None
    term = fo["SIGTERM"]["gap"]["max_s"] if fo else None
    rows.append(["unplanned failover (worst)", "≤ 2 s", seconds(kill), _met(kill, 2.0)])
    rows.append(["planned failover (worst)", "≤ 0.2 s", seconds(term), _met(term, 0.2)])
    cases = {(r["n"], r["distinct"]): r for r in (idle or {}).get("schedulers", {}).get(OURS, [])}
    big = cases.get((100_000, 1_000), {})
    distinct = cases.get((100_000, 100_000), {})
    cpu = big.get("cpu_s_per_min")
    rows.append(
        [
            "100,000 idle: CPU",
            "≈ 0",
            NONE if cpu is None else f"{cpu:.2f} s/min ({cpu / 60:.1%} of a core)",
            "see text",
        ]
    )
    rss = big.get("rss_peak_mib")
    rows.append(
        [
            "100,000 idle: peak RSS",
            "≤ 300 MB",
            NONE if rss is None else f"{rss:.0f} MiB",
            _met(rss, 300 / 1.048576),
        ]
    )
    commands = [
        (n, r.get("redis_commands_per_s"))
        for (n, d), r in sorted(cases.items())
        if d == min(n, 1_000)
    ]
    rows.append(
        [
            "Redis cmd/s independent of N",
            "flat",
            ", ".join(f"{n:,}: {c:g}" for n, c in commands if c is not None) or NONE,
            "see text",
        ]
    )
    start = big.get("startup_s")
    rows.append(
        ["start-up, 100,000 jobs, 1,000 expressions", "≤ 3 s", seconds(start), _met(start, 3.0)]
    )
    start_all = distinct.get("startup_s")
    rows.append(["start-up, 100,000 jobs, all distinct", "(report)", seconds(start_all), NONE])
    return table(["target", "goal", "measured", "met"], rows)


def _met(value: float | None, limit: float) -> str:
    if value is None:
        return NONE
    return "yes" if value <= limit else "**no**"


def meta_section() -> str:
    lines = []
    for mode in ("full", "quick"):
        path = RESULTS / mode / "meta.json"
        if not path.exists():
            continue
        meta = json.loads(path.read_text())
        box = meta["machine"]
        versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
        lines.append(
            f"- {mode} runs (latest {meta['written_at']}): {box['cpu']}, {box['cores']} cores, "
            f"{box['memory_gib']} GiB, Linux {box['kernel']}, Python {box['python']}; {versions}"
        )
    return "\n".join(lines) or "_No run yet._"


def profile_section() -> str:
    path = RESULTS / "profile.json"
    if not path.exists():
        return "_No profile yet: run `bench/profile_burst.py`._"
    data = json.loads(path.read_text())
    top = max(data["inclusive"].values(), default=1.0)
    rows = [  # without the frames every sample is under (the CLI, Node.run)
        [f"{100 * share:.0f}%", f"`{frame}`"]
        for frame, share in data["inclusive"].items()
        if share < 0.95 * top
    ]
    own = [[f"{100 * share:.0f}%", f"`{frame}`"] for frame, share in list(data["own"].items())]
    redis = ", ".join(
        f"`{name}` {spent['calls']:,} calls {seconds(spent['s'])}"
        for name, spent in data["redis_commands"].items()
    )
    return "\n\n".join(
        [
            f"_py-spy at {data['rate_hz']} Hz on our node through one burst of "
            f"{data['n']:,} ({data['measured_at']}, scheduler {data['scheduler_version']}): "
            f"last message {seconds(data['last_s'])} after the slot, {data['samples']} samples "
            f"with the interpreter busy._",
            "Time under each of the scheduler's functions (a share of all samples):",
            table(["share", "function"], rows),
            "Own time, any module:",
            table(["share", "function"], own),
            f"Inside Redis in the same time (commands run by the claim script count twice, "
            f"on their own and in the script): {redis}.",
        ]
    )


def main() -> None:
    drew = chart()
    sections = {
        "meta": meta_section(),
        "targets": targets_section(),
        "burst": burst_section(),
        "chart": (
            "![time to enqueue a burst vs N](performance-burst.png)" if drew else "_No chart yet._"
        ),
        "precision": precision_section(),
        "failover": failover_section(),
        "idle": idle_section(),
        "worker": worker_section(),
        "profile": profile_section(),
    }
    text = TEMPLATE.read_text(encoding="utf-8")
    for name, body in sections.items():
        text = text.replace(f"@@{name}@@", body)
    PAGE.write_text(text, encoding="utf-8")
    print(
        f"wrote {PAGE.relative_to(REPO_ROOT)}"
        + (f" and {CHART.relative_to(REPO_ROOT)}" if drew else "")
    )


def worker_section() -> str:
    data, mode = load("worker")
    if data is None:
        return source(mode, data)
    verdict = "every one ran" if data["ok"] else "**not all ran cleanly**"
    errors = "; ".join(data["worker_errors"]) or "none"
    return (
        f"{source(mode, data)}\n\nA stock Celery {_celery_version()} worker (prefork, 2 processes) "
        f"consumed a burst of {data['n']:,} of our messages: {data['ran']:,} ran with "
        f"{data['distinct_task_ids']:,} distinct task ids, all within "
        f"{data['all_ran_within_s']} s of the slot; {verdict}. Worker log errors: {errors}."
    )


def _celery_version() -> str:
    for mode in ("full", "quick"):
        path = RESULTS / mode / "meta.json"
        if path.exists():
            return str(json.loads(path.read_text())["versions"].get("celery", ""))
    return ""


if __name__ == "__main__":
    main()
