"""`bench`: list what can run, run it, and manage datasets.

bench list                          scenarios and implementations (with availability)
bench run [--scenario S] [--impl I] [--profile quick] ...   measure, store, summarise
bench run --resume RUN              finish an interrupted run
bench show [RUN]                    summary table of a stored run (default: the latest)
bench data [fetch NAME | verify [NAME]]
"""

from __future__ import annotations

import argparse
import contextlib
import errno
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

from bench import datasets, outcomes, registry, runner, threads
from bench.results import RunNotFound, RunStore, latest_run_id, new_run_id, results_root
from bench.scenarios import PROFILES, SCENARIOS

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Piped output (CI logs, `| tee`) gets a wide table instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)
errors = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


class UsageError(Exception):
    """A mistake in the command line; printed without a traceback, exit code 2."""


def _split(values: list[str] | None) -> list[str]:
    """`--impl a,b --impl c` -> [a, b, c]."""
    return [item.strip() for value in values or () for item in value.split(",") if item.strip()]


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
def _sigterm_as_interrupt() -> Iterator[None]:
    """`kill` (SIGTERM) stops a command like Ctrl-C: a run records its current case as
    interrupted and keeps everything finished."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_run(args: argparse.Namespace) -> int:
    root = results_root(args.results_dir)
    if args.resume:
        store = RunStore.open(root, args.resume)
        cases = [runner.Case.from_spec(spec) for spec in store.meta["plan"]]
        pending = len(cases) - len(store.finished() & {c.id for c in cases})
        console.print(f"Resuming run [bold]{store.run_id}[/]: {pending} of {len(cases)} cases left")
    else:
        store, cases = _new_run(args, root)
    resume = f"bench run --resume {store.run_id}" + (
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
    return _finish(store)


def _new_run(args: argparse.Namespace, root: Path) -> tuple[RunStore, list[runner.Case]]:
    from bench import environment, peak

    found = registry.discover(args.plugins)
    for broken in found.broken:
        errors.print(
            f"[red]broken plugin[/] {escape(broken.source)}: {escape(broken.error)} "
            "(its cases are missing from this run; `bench list` shows it too)"
        )
    scenarios = runner.select_scenarios(_split(args.scenario))
    implementations = _split(args.impl)
    thread_counts = _thread_counts(args.threads) or [threads.available_cores()]
    # Validate every name before the (possibly slow) dataset resolution.
    runner.plan(found, scenarios, implementations=implementations, profile=args.profile)
    resolutions = _resolve_datasets(scenarios, args)
    cases = runner.plan(
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
    )
    if not cases:
        raise UsageError(
            "nothing to run: no implementation matches the selected scenarios (see `bench list`)"
        )
    meta = {
        "command": "bench " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "profile": args.profile,
        "datasets": resolutions,
        "broken_plugins": [vars(b) for b in found.broken],
        "environment": environment.fingerprint(max(thread_counts), PROJECT_DIR),
        "plan": [case.spec() for case in cases],
    }
    store = RunStore.create(root, new_run_id(args.profile), meta)
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


def _resolve_datasets(scenarios, args: argparse.Namespace) -> dict[str, dict]:
    """Dataset per scenario, found or fetched once in this process, fallback announced."""
    if args.dataset:
        runner.check_name("dataset", args.dataset, datasets.NAMES)
        if args.dataset == "blobs":
            raise UsageError(
                "--dataset blobs: the image scenarios need images; K-Means "
                "scenarios always use blobs"
            )
    resolved: dict[str, dict] = {}
    by_name: dict[str, dict] = {}
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
            by_name[name] = vars(resolution)
        resolved[scenario.name] = by_name[name]
    return resolved


def _execute(store: RunStore, cases: list[runner.Case]) -> None:
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

        def on_start(case: runner.Case) -> None:
            progress.update(
                task, description=f"{case.scenario} · {case.implementation} · {case.threads}t"
            )

        def on_done(case: runner.Case, record: dict) -> None:
            if record["status"] != outcomes.OK:
                progress.console.print(
                    f"[yellow]{case.id}: {record['status']}[/] "
                    f"{escape(str(record.get('reason') or ''))}"
                )
            progress.advance(task)

        runner.execute(store, todo, on_start=on_start, on_done=on_done)


def _finish(store: RunStore) -> int:
    tables = store.write_tables()
    print_summary(tables["summary"], store.meta)
    console.print(
        f"\nResults: [bold]{store.directory}[/]  (summary.csv, rounds.csv, "
        "benchmarks/*.json for `pytest-benchmark compare`)"
    )
    return 0


def print_summary(summary, meta: dict) -> None:
    fallbacks: dict[tuple[str, str], list[str]] = {}
    for scenario, dataset in (meta.get("datasets") or {}).items():
        if dataset.get("fallback_reason"):
            fallbacks.setdefault((dataset["requested"], dataset["used"]), []).append(scenario)
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
        first = (row["scenario"], row["implementation"], str(row["threads"]), data, status)
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
    return f"test {_pct(row['test_accuracy_median'])}"


def _num(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}" if digits == 0 else f"{value:.{digits}g}"


def _pct(value) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def _mib(value) -> str:
    return "–" if value is None or math.isnan(value) else f"{value / 2**20:.0f} MiB"


# --- bench show --------------------------------------------------------------------------


def cmd_show(args: argparse.Namespace) -> int:
    root = results_root(args.results_dir)
    run_id = args.run or latest_run_id(root)
    if run_id is None:
        raise UsageError(f"no runs in {root}; start one with `bench run`")
    return _finish(RunStore.open(root, run_id))


# --- bench data --------------------------------------------------------------------------


def cmd_data(args: argparse.Namespace) -> int:
    if args.action == "fetch":
        runner.check_name("dataset", args.name, datasets.NAMES)
        path = datasets.fetch(args.name, force=args.force, log=console.print)
        console.print(f"{args.name}: verified files in {path}")
        return 0
    names = [args.name] if args.name else list(datasets.NAMES)
    for name in names:
        runner.check_name("dataset", name, datasets.NAMES)
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
    run.add_argument("--rounds", type=int, help="measured rounds per case (default: profile)")
    run.add_argument("--warmup", type=int, help="warm-up rounds, reported as cold start")
    run.add_argument(
        "--threads",
        "-t",
        action="append",
        help="thread count(s), e.g. 1,2 (default: all cores allotted)",
    )
    run.add_argument("--device", action="append", help="device(s), default cpu")
    run.add_argument("--timeout", type=float, help="seconds per case before it is killed")
    run.add_argument(
        "--round-cap",
        type=float,
        metavar="SECONDS",
        help="stop each training round after this much training time; marked capped",
    )
    run.add_argument("--seed", type=int, default=0, help="base seed; round r uses seed+r")
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

    show = commands.add_parser("show", help="summary table of a stored run")
    show.add_argument("run", nargs="?", help="run id or folder (default: the latest)")
    show.add_argument("--results-dir", metavar="DIR", help="where runs are stored")
    show.set_defaults(func=cmd_show)

    data = commands.add_parser("data", help="where each dataset is; fetch; verify")
    data.add_argument("action", nargs="?", choices=("status", "fetch", "verify"), default="status")
    data.add_argument("name", nargs="?", help="dataset name")
    data.add_argument("--force", action="store_true", help="fetch again even if present")
    data.set_defaults(func=cmd_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "data" and args.action == "fetch" and not args.name:
        errors.print("bench data fetch: name a dataset: " + ", ".join(datasets.NAMES))
        return 2
    try:
        with _sigterm_as_interrupt():
            return args.func(args)
    except (UsageError, runner.SelectionError, RunNotFound, datasets.DatasetError) as error:
        errors.print(f"[red]error:[/] {escape(str(error))}")
        return 2
    except KeyboardInterrupt:
        errors.print("\n[yellow]Interrupted.[/]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
