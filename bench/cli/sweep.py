"""`bench sweep`: a run whose cases carry growing sizes and thread counts; run.json says
so, and the summary ends with each implementation's scaling exponent."""

from __future__ import annotations

import argparse

from bench.analysis import sweep
from bench.cli import run as run_command
from bench.cli.options import Groups, UsageError, split, thread_counts
from bench.execution import plan, threads
from bench.names import check_name
from bench.scenarios import PROFILES


def add_parser(commands: argparse._SubParsersAction, groups: Groups) -> None:
    parser = commands.add_parser(
        "sweep",
        parents=[groups.plugins, groups.results],
        help="a run over growing sizes and thread counts, with scaling exponents",
        description="Run the same cases over growing sizes and thread counts (default 1, 2, "
        "4, ... all cores); takes every option of `bench run`.",
    )
    run_command.add_run_options(parser)
    parser.add_argument(
        "--over",
        metavar="KEY",
        help="what grows: n_samples (kmeans, default), batch_size (trainers, default) or steps",
    )
    parser.add_argument(
        "--sizes", action="append", help="sizes, e.g. 1e4,1e5,1e6 (default: by profile)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.resume:
        return run_command.resume(args, {"over": "--over", "sizes": "--sizes"})
    if not args.scenario:
        raise UsageError("name the scenario(s) to sweep, e.g. --scenario linfa-kmeans")
    profile = run_command.profile_of(args)
    check_name("profile", profile, PROFILES)
    try:
        key = sweep.sweep_key(plan.select_scenarios(split(args.scenario)), args.over)
        sizes = sweep.parse_sizes(args.sizes or ()) or sweep.default_sizes(key, profile)
    except sweep.SweepError as error:
        raise UsageError(str(error)) from None
    counts = thread_counts(args.threads) or sweep.default_thread_counts(threads.available_cores())
    with (
        run_command.executor_for(args) as executor,
        run_command.new_run(
            args, counts, overrides=sweep.overrides(key, sizes), executor=executor
        ) as (store, cases),
    ):
        planned_threads = sorted({case.threads for case in cases})
        store.update_meta(sweep={"key": key, "sizes": sizes, "thread_counts": planned_threads})
        return run_command.execute_stored(store, cases, args, executor) or run_command.finish(store)
