"""`bench`: list what can run, run it, and manage datasets.

bench list                          scenarios and implementations (with availability)
bench run [--scenario S] [--impl I] [--profile quick] ...   measure, store, summarise
bench run --resume RUN              finish an interrupted run
bench show [RUN]                    summary table of a stored run (default: the latest)
bench report [RUN ...] [--baseline RUN] [--format html|md]   the self-contained HTML report
bench compare A B [--fail-above 5%] run B against run A, case by case; exit 1 on a regression
bench sweep -s S [--sizes 1e4,1e5] [--threads 1,2]   a run over growing sizes; scaling exponents
bench data [fetch NAME | verify [NAME]]
bench check IMPL [--scenario S]     the conformance suite: does IMPL follow the contract?
bench new NAME [--model mlp|cnn|kmeans]  write a plugin skeleton in implementations/NAME
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import errno
import faulthandler
import math
import shlex
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from bench import datasets, outcomes, registry
from bench.analysis.tables import tidy_tables
from bench.execution import plan, runner, threads
from bench.names import UnknownName, check_name
from bench.records import BrokenPluginRecord, Case, DatasetResolution, RunMeta
from bench.scenarios import PROFILES, SCENARIOS, scenario_to_json
from bench.store import RunNotFound, RunStore, latest_run_id, new_run_id, results_root

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Piped output (CI logs, `| tee`) gets a wide table instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)
errors = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


class UsageError(Exception):
    """A mistake in the command line; printed without a traceback, exit code 2."""


def _split(values: list[str] | None) -> list[str]:
    """`--impl a,b --impl c` -> [a, b, c]."""
    return [item.strip() for value in values or () for item in value.split(",") if item.strip()]


def _number(kind: type, minimum: float, what: str):
    """An argparse type: a number of `kind` not below `minimum`, else a clear error."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value < minimum:
            raise argparse.ArgumentTypeError(f"takes {what}, got {text!r}")
        return value

    return parse


POSITIVE_INT = _number(int, 1, "a whole number of 1 or more")
COUNT = _number(int, 0, "a whole number of 0 or more")
SECONDS = _number(float, 1e-3, "a number of seconds above 0")


def _thread_counts(values: list[str] | None) -> list[int]:
    counts = []
    for item in _split(values):
        if not item.isdigit() or int(item) < 1:
            raise UsageError(f"--threads takes positive integers, got {item!r}")
        counts.append(int(item))
    return counts


# --- bench list --------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    found = registry.discover(args.plugins)
    table = Table(title="Scenarios", title_justify="left")
    for column in ("scenario", "model", "dataset", "smoke / quick / full budget", "what"):
        table.add_column(column)
    for s in SCENARIOS.values():
        budgets = " / ".join(_budget_text(s, p) for p in PROFILES)
        table.add_row(s.name, s.model, s.dataset, budgets, escape(s.title))
    console.print(table)

    table = Table(title="Implementations", title_justify="left")
    for column in ("implementation", "model", "framework", "status", "source"):
        table.add_column(column, overflow="fold")
    for p in sorted(found.plugins, key=lambda p: (p.name, p.model)):
        if p.available:
            unsupported = [
                f"{s.name}: {why}"
                for s in SCENARIOS.values()
                if s.model == p.model and (why := p.why_unsupported(s))
            ]
            status = "[green]available[/]" + "".join(
                f"\n[yellow]not supported[/] {escape(u)}" for u in unsupported
            )
        else:
            status = f"[yellow]skipped[/]: {escape(p.unavailable_reason or '')}"
        table.add_row(p.name, p.model, escape(p.framework), status, escape(p.source))
    console.print(table)
    for broken in found.broken:
        errors.print(f"[red]broken plugin[/] {escape(broken.source)}: {escape(broken.error)}")
    return 0


def _budget_text(scenario, profile: str) -> str:
    budget = scenario.budget(profile)
    if budget.n_samples:
        return f"{budget.n_samples:,} pts"
    if budget.steps:
        return f"{budget.steps:,} steps"
    return f"{budget.epochs:g} ep"


# --- bench run ---------------------------------------------------------------------------


@contextlib.contextmanager
def _stop_signals_as_interrupt() -> Iterator[None]:
    """`kill` (SIGTERM) and SIGINT stop a command like Ctrl-C: a run records its current case
    as interrupted and keeps everything finished."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    # A shell starts background commands (`bench run &`, a CI step's children) with SIGINT
    # ignored, and Python then never turns it into KeyboardInterrupt: SIGINT would do nothing.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def cmd_run(args: argparse.Namespace) -> int:
    root = results_root(args.results_dir)
    if args.resume:
        store = RunStore.open(root, args.resume)
        cases = list(store.meta.plan)
        pending = len(cases) - len(store.finished() & {c.id for c in cases})
        console.print(f"Resuming run [bold]{store.run_id}[/]: {pending} of {len(cases)} cases left")
    else:
        store, cases = _new_run(args, root)
    return _execute_stored(store, cases, args, root) or _finish(store)


def _execute_stored(store: RunStore, cases: list[Case], args, root: Path) -> int:
    """Run the cases; on Ctrl-C or a full disk say how to resume. Returns the exit code."""
    resume = f"bench {args.command} --resume {store.run_id}" + (
        f" --results-dir {shlex.quote(str(root))}" if args.results_dir else ""
    )
    try:
        _execute(store, cases)
    except KeyboardInterrupt:
        errors.print(
            f"\n[yellow]Interrupted.[/] {len(store.finished())} finished case(s) are "
            f"stored in {store.directory}. Finish the run with: {resume}"
        )
        return 130
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        errors.print(
            f"[red]error:[/] disk full while writing {escape(str(error.filename))}. "
            f"Finished cases are intact in {store.directory}: free some space, "
            f"then {resume}"
        )
        return 1
    return 0


def _new_run(
    args: argparse.Namespace, root: Path, overrides: list[dict] | None = None
) -> tuple[RunStore, list[Case]]:
    from bench.execution import environment, peak

    found = registry.discover(args.plugins)
    for broken in found.broken:
        errors.print(
            f"[red]broken plugin[/] {escape(broken.source)}: {escape(broken.error)} "
            "(its cases are missing from this run; `bench list` shows it too)"
        )
    scenarios = plan.select_scenarios(_split(args.scenario))
    implementations = _split(args.impl)
    thread_counts = _thread_counts(args.threads) or [threads.available_cores()]
    # Every name is checked before the (possibly slow) dataset resolution.
    plan.check_selection(found, implementations, args.profile)
    resolutions = _resolve_datasets(scenarios, args)
    cases = plan.plan(
        found,
        scenarios,
        implementations=implementations,
        profile=args.profile,
        thread_counts=thread_counts,
        devices=_split(args.device) or ["cpu"],
        rounds=args.rounds,
        warmup_rounds=args.warmup,
        timeout_s=args.timeout,
        round_cap_s=args.round_cap,
        seed=args.seed,
        datasets=resolutions,
        overrides=overrides or [{}],
    )
    if not cases:
        raise UsageError(
            "nothing to run: no implementation matches the selected scenarios (see `bench list`)"
        )
    meta = RunMeta(
        run_id=new_run_id(args.profile),
        started_at=dt.datetime.now().isoformat(timespec="seconds"),
        command="bench " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        profile=args.profile,
        datasets=resolutions,
        broken_plugins=tuple(
            BrokenPluginRecord(b.source, b.error, b.details) for b in found.broken
        ),
        environment=environment.fingerprint(max(thread_counts), PROJECT_DIR),
        plan=tuple(cases),
        scenarios={s.name: scenario_to_json(s) for s in scenarios},
    )
    store = RunStore.create(root, meta)
    console.print(
        f"Run [bold]{store.run_id}[/]: {len(cases)} cases, profile {args.profile}, "
        f"results in {store.directory}"
    )
    if not args.no_peak:
        with console.status("Measuring the machine's peak GEMM rate and memory bandwidth"):
            store.update_meta(
                machine_peak={
                    str(n): peak.measure_in_subprocess(n) for n in sorted(set(thread_counts))
                }
            )
    return store, cases


def _resolve_datasets(scenarios, args: argparse.Namespace) -> dict[str, DatasetResolution]:
    """Dataset per scenario, found or fetched once in this process, fallback announced."""
    if args.dataset:
        check_name("dataset", args.dataset, datasets.NAMES)
        if args.dataset == "blobs":
            raise UsageError(
                "--dataset blobs: the image scenarios need images; K-Means "
                "scenarios always use blobs"
            )
    resolved: dict[str, DatasetResolution] = {}
    by_name: dict[str, DatasetResolution] = {}
    for scenario in scenarios:
        name = (
            scenario.dataset if scenario.model == "kmeans" else (args.dataset or scenario.dataset)
        )
        if name not in by_name:
            resolution = datasets.resolve(
                name,
                download=not args.offline,
                log=lambda m: errors.print(f"[yellow]{escape(m)}[/]"),
            )
            if resolution.fallback_reason:
                errors.print(f"[bold red]DATASET FALLBACK[/]: {escape(resolution.fallback_reason)}")
            by_name[name] = resolution
        resolved[scenario.name] = by_name[name]
    return resolved


def _execute(store: RunStore, cases: list[Case]) -> None:
    todo = [c for c in cases if c.id not in store.finished()]
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("cases", total=len(todo))

        def on_start(case: Case) -> None:
            progress.update(
                task, description=f"{case.scenario} · {case.implementation} · {case.threads}t"
            )

        def on_done(case: Case, record) -> None:
            if record.status != outcomes.OK:
                progress.console.print(
                    f"[yellow]{case.id}: {record.status}[/] {escape(str(record.reason or ''))}"
                )
            progress.advance(task)

        runner.execute(store, todo, on_start=on_start, on_done=on_done)
    store.update_meta(finished_at=dt.datetime.now().isoformat(timespec="seconds"))


def _finish(store: RunStore) -> int:
    """Print the run's summary (its tables are computed here: reading writes nothing)."""
    tables = tidy_tables(store.cases(), store.meta, store.scenarios())
    print_summary(tables["summary"], store.meta)
    if sweep_meta := store.meta.sweep:
        print_scaling(tables["summary"], sweep_meta["key"])
    console.print(
        f"\nResults: [bold]{store.directory}[/]  (summary.csv, rounds.csv, "
        "benchmarks/*.json for `pytest-benchmark compare`)"
    )
    return 0


def print_summary(summary, meta: RunMeta) -> None:
    fallbacks: dict[tuple[str, str], list[str]] = {}
    for scenario, dataset in meta.datasets.items():
        if dataset.fallback_reason:
            fallbacks.setdefault((dataset.requested, dataset.used), []).append(scenario)
    for (requested, used), scenarios in fallbacks.items():
        console.print(
            f"[bold red]FALLBACK DATASET: {', '.join(scenarios)} ran on {used}, not "
            f"{requested}[/] — numbers are not comparable with the articles' (why: "
            "`datasets` in run.json; `bench data` shows where files are looked for)"
        )
    table = Table(title="Summary (medians over measured rounds)", title_justify="left")
    columns = (
        "scenario",
        "implementation",
        "thr",
        "data",
        "status",
        "train s (IQR)",
        "n",
        "cold s",
        "CPU util",
        "quality",
        "samples/s",
        "peak RSS",
    )
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in summary.to_dict("records"):
        data = escape(str(row["dataset"]))
        if isinstance(row["dataset_fallback"], str):
            data = f"[red]{data} (fallback)[/]"
        ok = row["status"] == outcomes.OK
        status = row["status"] if ok else f"[yellow]{row['status']}[/]"
        if row.get("capped_rounds"):
            status += f"\n[yellow]capped {row['capped_rounds']}/{row['rounds']}[/]"
            if math.isfinite(row.get("test_examples_min", math.nan)):
                status += f"\n[yellow]acc. on {int(row['test_examples_min'])} test images[/]"
        implementation = row["implementation"]
        if row.get("device", "cpu") != "cpu":
            implementation += f" ({row['device']})"
        first = (row["scenario"], implementation, str(row["threads"]), data, status)
        if not ok and not row["rounds"]:
            reason = escape(str(row["reason"] or ""))
            table.add_row(*first, reason, *[""] * (len(columns) - len(first) - 1))
            continue
        table.add_row(
            *first,
            f"{_num(row['train_seconds_median'])} ({_num(row['train_seconds_iqr'])})",
            str(row["rounds"]),
            _num(row["cold_start_seconds"]),
            _pct(row["utilisation_median"]),
            _quality(row),
            _num(row["samples_per_second_median"], digits=0),
            _mib(row["peak_rss_bytes_median"]),
        )
    console.print(table)


def _quality(row: dict) -> str:
    if row["model"] == "kmeans":
        return f"ARI {_num(row['adjusted_rand_index_median'])}"
    text = f"test {_pct(row['test_accuracy_median'])}"
    at_chance = row.get("at_chance_level") == True  # noqa: E712  (pandas may give numpy bools)
    return f"[red]{text} (chance)[/]" if at_chance else text


def _num(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}" if digits == 0 else f"{value:.{digits}g}"


def _pct(value) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def _mib(value) -> str:
    return "–" if value is None or math.isnan(value) else f"{value / 2**20:.0f} MiB"


# --- bench sweep -------------------------------------------------------------------------


def cmd_sweep(args: argparse.Namespace) -> int:
    """A run whose cases carry growing sizes (and thread counts); run.json says so."""
    from bench.analysis import sweep

    if args.resume:
        return cmd_run(args)
    if not args.scenario:
        raise UsageError("name the scenario(s) to sweep, e.g. --scenario linfa-kmeans")
    check_name("profile", args.profile, PROFILES)
    try:
        key = sweep.sweep_key(plan.select_scenarios(_split(args.scenario)), args.over)
        sizes = sweep.parse_sizes(args.sizes or ()) or sweep.default_sizes(key, args.profile)
    except sweep.SweepError as error:
        raise UsageError(str(error)) from None
    if not args.threads:
        args.threads = [",".join(map(str, sweep.default_thread_counts(threads.available_cores())))]
    root = results_root(args.results_dir)
    store, cases = _new_run(args, root, overrides=sweep.overrides(key, sizes))
    thread_counts = sorted({case.threads for case in cases})
    store.update_meta(sweep={"key": key, "sizes": sizes, "thread_counts": thread_counts})
    return _execute_stored(store, cases, args, root) or _finish(store)


def print_scaling(summary, key: str) -> None:
    from bench.analysis import sweep

    rows = sweep.scaling_rows(summary, key)
    sizes = sorted({size for row in rows for size in row["seconds"]})
    table = Table(
        title=f"Scaling: median seconds per {key}; exponent of time ≈ c·{key}^exponent",
        title_justify="left",
    )
    for column in ("scenario", "implementation", "thr", "device", *map("{:,}".format, sizes)):
        table.add_column(column, overflow="fold")
    table.add_column("exponent")
    for row in rows:
        cells = []
        for size in sizes:
            seconds, status = row["seconds"].get(size, math.nan), row["status"].get(size)
            text = _num(seconds) if math.isfinite(seconds) else ""
            if status != outcomes.OK:
                text = f"{text} [yellow]{status or 'not planned'}[/]".strip()
            cells.append(text)
        first = (row["scenario"], row["implementation"], str(row["threads"]), row["device"])
        table.add_row(*first, *cells, _num(row["exponent"]))
    console.print(table)


# --- bench show --------------------------------------------------------------------------


def cmd_show(args: argparse.Namespace) -> int:
    return _finish(_open_run(results_root(args.results_dir), args.run))


# --- bench report, bench compare ---------------------------------------------------------


def _open_run(root: Path, run: str | None) -> RunStore:
    """RUN (an id or a folder), or the latest run in `root`."""
    run_id = run or latest_run_id(root)
    if run_id is None:
        raise UsageError(f"no runs in {root}; start one with `bench run`")
    return RunStore.open(root, run_id)


def cmd_report(args: argparse.Namespace) -> int:
    from bench import report  # matplotlib and Jinja load only for this command

    root = results_root(args.results_dir)
    stores = [_open_run(root, run) for run in args.runs or [None]]
    baseline = _open_run(root, args.baseline) if args.baseline else None
    path = report.write(
        stores, report.reports_root(args.reports_dir), baseline=baseline, fmt=args.format
    )
    print(path)  # plain print: a long path must stay on one line for scripts
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.analysis import compare

    root = results_root(args.results_dir)
    baseline, candidate = _open_run(root, args.baseline), _open_run(root, args.candidate)
    try:
        threshold = compare.parse_threshold(args.fail_above or "5%")
    except ValueError as error:
        raise UsageError(f"--fail-above: {error}") from None
    result = compare.compare_runs(baseline, candidate, threshold)
    for warning in result.warnings:
        errors.print(f"[yellow]warning:[/] {escape(warning)}")
    table = Table(
        title=f"{candidate.run_id} against {baseline.run_id}: median train time per case",
        title_justify="left",
    )
    for column in ("scenario", "implementation", "thr", "baseline", "candidate", "change",
                   "95% CI of change", "p (M-W)", "verdict"):  # fmt: skip
        textual = column in ("scenario", "implementation", "verdict")
        table.add_column(column, justify="left" if textual else "right")
    style = {compare.REGRESSED: "bold red", compare.IMPROVED: "green"}
    for case in result.cases:
        verdict = escape(case.verdict + (f" ({case.note})" if case.note else ""))
        if case.verdict in style:
            verdict = f"[{style[case.verdict]}]{verdict}[/]"
        table.add_row(
            escape(case.scenario),
            escape(case.implementation),
            str(case.threads),
            _seconds_text(case.baseline_median),
            _seconds_text(case.candidate_median),
            f"{case.change:+.1%}" if math.isfinite(case.ratio) else "–",
            f"{case.low - 1:+.1%} … {case.high - 1:+.1%}" if math.isfinite(case.low) else "–",
            _num(case.p_value, digits=2),
            verdict,
        )
    console.print(table)
    regressions = result.regressions
    console.print(
        f"{len(regressions)} case(s) slower by more than {threshold:.0%} beyond the noise"
        + (": " + ", ".join(escape(c.case_id) for c in regressions) if regressions else "")
    )
    return 1 if args.fail_above and regressions else 0


def _seconds_text(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.4g} s"


# --- bench data --------------------------------------------------------------------------


def cmd_data(args: argparse.Namespace) -> int:
    if args.action == "fetch":
        check_name("dataset", args.name, datasets.NAMES)
        path = datasets.fetch(args.name, force=args.force, log=console.print)
        console.print(f"{args.name}: verified files in {path}")
        return 0
    names = [args.name] if args.name else list(datasets.NAMES)
    for name in names:
        check_name("dataset", name, datasets.NAMES)
    table = Table(title="Datasets", title_justify="left")
    for column in ("dataset", "file", "status"):
        table.add_column(column, overflow="fold")
    failed = False
    for name in names:
        if name == "blobs":
            table.add_row(
                name, "generated on demand by sklearn.datasets.make_blobs", "[green]ok[/]"
            )
            continue
        checks = datasets.verify(name)
        if not checks:
            where = ", ".join(str(p) for p in datasets.search_locations(name)) or "built in"
            table.add_row(name, f"not found (looked in {escape(where)})", "–")
        for check in checks:
            failed |= not check.ok
            mark = "[green]ok[/]" if check.ok else f"[red]{escape(check.detail)}[/]"
            table.add_row(name, escape(str(check.path)), mark)
    console.print(table)
    if failed:
        console.print(
            "Files that fail verification are never used. Replace them with "
            + " or ".join(f"`bench data fetch {name} --force`" for name in names if name != "blobs")
            + ", or delete them."
        )
    return 1 if failed and args.action == "verify" else 0


# --- bench check, bench new --------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    from bench import conformance

    found = registry.discover(args.plugins)
    for broken in found.broken:
        errors.print(f"[red]broken plugin[/] {escape(broken.source)}: {escape(broken.error)}")
    check_name("implementation", args.impl, found.names())
    scenarios = plan.select_scenarios(_split(args.scenario))
    models = {s.model for s in scenarios}
    plugins = [p for p in found.plugins if p.name == args.impl and p.model in models]
    if not plugins:
        raise UsageError(f"{args.impl} implements none of the models of the selected scenarios")
    failed = 0
    for plugin in plugins:
        console.print(f"[bold]{plugin.name}[/] ({plugin.model}) from {escape(plugin.source)}")
        results = (
            conformance.run_checks(plugin.cls, scenarios)
            if plugin.available
            else [conformance.CheckResult("requirements", False, plugin.unavailable_reason or "")]
        )
        for r in results:
            mark = "[red]FAIL[/]" if not r.passed else "[yellow]skip[/]" if r.skipped else "pass"
            console.print(f"  {mark} {escape(r.name)}: {escape(r.detail)}")
        failed += sum(not r.passed for r in results)
    console.print("[red]conformance: failed[/]" if failed else "[green]conformance: passed[/]")
    return 1 if failed else 0


def cmd_new(args: argparse.Namespace) -> int:
    from bench import scaffold

    try:
        module = scaffold.new_plugin(args.name, args.model, args.dir)
    except scaffold.ScaffoldError as error:
        raise UsageError(str(error)) from None
    console.print(f"Wrote {escape(str(module.parent))}/")
    console.print(escape(scaffold.next_steps(args.name, module)))
    return 0


# --- entry point -------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    plugins = argparse.ArgumentParser(add_help=False)
    plugins.add_argument(
        "--plugins",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="also load implementations from DIR (repeatable)",
    )

    listing = commands.add_parser("list", parents=[plugins], help="scenarios and implementations")
    listing.set_defaults(func=cmd_list)

    run = commands.add_parser("run", parents=[plugins], help="measure cases and store a run")
    run.add_argument("--scenario", "-s", action="append", help="scenario name(s), comma-separated")
    run.add_argument("--impl", "-i", action="append", help="implementation name(s)")
    run.add_argument("--profile", "-p", default="quick", help="smoke, quick (default) or full")
    run.add_argument(
        "--dataset",
        help="image dataset instead of the scenario's: "
        + ", ".join(n for n in datasets.NAMES if n != "blobs"),
    )
    run.add_argument(
        "--rounds", type=POSITIVE_INT, help="measured rounds per case (default: profile)"
    )
    run.add_argument("--warmup", type=COUNT, help="warm-up rounds, reported as cold start")
    run.add_argument(
        "--threads",
        "-t",
        action="append",
        help="thread count(s), e.g. 1,2 (default: all cores allotted)",
    )
    run.add_argument("--device", action="append", help="device(s), default cpu")
    run.add_argument("--timeout", type=SECONDS, help="seconds per case before it is killed")
    run.add_argument(
        "--round-cap",
        type=SECONDS,
        metavar="SECONDS",
        help="stop each training round after this much training time; marked capped",
    )
    run.add_argument("--seed", type=COUNT, default=0, help="base seed; round r uses seed+r")
    run.add_argument("--offline", action="store_true", help="never download datasets")
    run.add_argument(
        "--no-peak", action="store_true", help="skip measuring the machine's GEMM/bandwidth peak"
    )
    run.add_argument("--resume", metavar="RUN", help="finish the unfinished cases of RUN")
    run.add_argument(
        "--results-dir",
        metavar="DIR",
        help="where runs are stored (default $BENCH_RESULTS_DIR or ./results)",
    )
    run.set_defaults(func=cmd_run)

    sweeping = commands.add_parser(
        "sweep",
        parents=[run],
        add_help=False,
        help="a run over growing sizes and thread counts, with scaling exponents",
        description="Run the same cases over growing sizes and thread counts (default 1, 2, "
        "4, ... all cores); takes every option of `bench run`.",
    )
    sweeping.add_argument(
        "--over",
        metavar="KEY",
        help="what grows: n_samples (kmeans, default), batch_size (trainers, default) or steps",
    )
    sweeping.add_argument(
        "--sizes", action="append", help="sizes, e.g. 1e4,1e5,1e6 (default: by profile)"
    )
    sweeping.set_defaults(func=cmd_sweep)

    show = commands.add_parser("show", help="summary table of a stored run")
    show.add_argument("run", nargs="?", help="run id or folder (default: the latest)")
    show.add_argument("--results-dir", metavar="DIR", help="where runs are stored")
    show.set_defaults(func=cmd_show)

    reporting = commands.add_parser("report", help="write the self-contained HTML report")
    reporting.add_argument("runs", nargs="*", metavar="RUN", help="run id(s) (default: latest)")
    reporting.add_argument("--baseline", metavar="RUN", help="compare every case with RUN")
    reporting.add_argument("--format", choices=("html", "md"), default="html")
    reporting.add_argument("--results-dir", metavar="DIR", help="where runs are stored")
    reporting.add_argument(
        "--reports-dir",
        metavar="DIR",
        help="where reports are written (default $BENCH_REPORTS_DIR or ./reports)",
    )
    reporting.set_defaults(func=cmd_report)

    comparing = commands.add_parser("compare", help="run B against run A, case by case")
    comparing.add_argument("baseline", metavar="A", help="baseline run id or folder")
    comparing.add_argument("candidate", metavar="B", help="candidate run id or folder")
    comparing.add_argument(
        "--fail-above",
        metavar="PCT",
        help="exit 1 if a case is significantly slower by more than PCT (e.g. 5%%)",
    )
    comparing.add_argument("--results-dir", metavar="DIR", help="where runs are stored")
    comparing.set_defaults(func=cmd_compare)

    data = commands.add_parser("data", help="where each dataset is; fetch; verify")
    data.add_argument("action", nargs="?", choices=("status", "fetch", "verify"), default="status")
    data.add_argument("name", nargs="?", help="dataset name")
    data.add_argument("--force", action="store_true", help="fetch again even if present")
    data.set_defaults(func=cmd_data)

    check = commands.add_parser(
        "check", parents=[plugins], help="run the conformance suite on an implementation"
    )
    check.add_argument("impl", metavar="IMPL", help="implementation name (see `bench list`)")
    check.add_argument(
        "--scenario", "-s", action="append", metavar="S", help="only these scenario(s)"
    )
    check.set_defaults(func=cmd_check)

    new = commands.add_parser("new", help="write a plugin skeleton to fill in")
    new.add_argument("name", metavar="NAME", help="lowercase words joined by '-', e.g. my-numpy")
    new.add_argument(
        "--model", choices=("mlp", "cnn", "kmeans"), default="mlp", help="default: mlp"
    )
    new.add_argument(
        "--dir", type=Path, default=Path("implementations"), help="where to write NAME/"
    )
    new.set_defaults(func=cmd_new)
    return parser


def _stacks_on_sigusr1() -> None:
    """`kill -USR1 <pid>` prints where every thread of a run that seems stuck is."""
    if hasattr(signal, "SIGUSR1"):
        with contextlib.suppress(ValueError, OSError, RuntimeError):  # no usable stderr
            faulthandler.register(signal.SIGUSR1, all_threads=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _stacks_on_sigusr1()
    if args.command == "data" and args.action == "fetch" and not args.name:
        errors.print("bench data fetch: name a dataset: " + ", ".join(datasets.NAMES))
        return 2
    try:
        with _stop_signals_as_interrupt():
            return args.func(args)
    except (UsageError, UnknownName, RunNotFound, datasets.DatasetError) as error:
        errors.print(f"[red]error:[/] {escape(str(error))}")
        return 2
    except KeyboardInterrupt:
        errors.print("\n[yellow]Interrupted.[/]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
