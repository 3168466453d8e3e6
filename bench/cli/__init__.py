"""`bench`: list what can run, run it, and manage datasets.

bench list                          scenarios and implementations (with availability)
bench run [--scenario S] [--impl I] [--profile quick] ...   measure, store, summarise
bench run --resume RUN              finish an interrupted run
bench run --cluster tcp://HOST:PORT run the cases on a Dask cluster (or local:N)
bench show [RUN]                    summary table of a stored run (default: the latest)
bench report [RUN ...] [--baseline RUN] [--format html|md]   the self-contained HTML report
bench compare A B [--fail-above 5%] run B against run A, case by case; exit 1 on a regression
bench sweep -s S [--sizes 1e4,1e5] [--threads 1,2]   a run over growing sizes; scaling exponents
bench data [fetch NAME | verify [NAME]]
bench check IMPL [--scenario S]     the conformance suite: does IMPL follow the contract?
Every command takes --scenarios PATH (or $BENCH_SCENARIOS): your own scenario files.
bench new NAME [--model mlp|cnn|kmeans]  write a plugin skeleton in implementations/NAME
bench doctor [--threads N]          is this machine fit to measure on? advice if not
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import signal
from collections.abc import Iterator

from rich.markup import escape

from bench import datasets, scenarios
from bench.cli import check, compare, data, doctor, listing, new, report, run, show, sweep
from bench.cli.options import Groups, UsageError, add_scenarios_option
from bench.cli.terminal import errors
from bench.execution.cluster import ClusterError
from bench.names import UnknownName
from bench.store import RunUnavailable

# Each module: add_parser(subparsers, groups) declares the command, and its run(args) does it.
COMMANDS = (listing, run, sweep, show, report, compare, data, check, new, doctor)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    groups = Groups()
    for command in COMMANDS:
        command.add_parser(commands, groups)
    for subparser in commands.choices.values():  # every command knows the user's scenarios
        add_scenarios_option(subparser)
    return parser


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


def _stacks_on_sigusr1() -> None:
    """`kill -USR1 <pid>` prints where every thread of a run that seems stuck is."""
    if hasattr(signal, "SIGUSR1"):
        with contextlib.suppress(ValueError, OSError, RuntimeError):  # no usable stderr
            faulthandler.register(signal.SIGUSR1, all_threads=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _stacks_on_sigusr1()
    try:
        with _stop_signals_as_interrupt():
            scenarios.use(args.scenarios)
            return args.func(args)
    except (
        UsageError,
        UnknownName,
        RunUnavailable,
        datasets.DatasetError,
        scenarios.ScenarioFileError,
    ) as error:
        errors.print(f"[red]error:[/] {escape(str(error))}")
        return 2
    except ClusterError as error:  # no case ran: unreachable, refused, or Dask missing
        errors.print(f"[red]error:[/] {escape(str(error))}")
        return 1
    except KeyboardInterrupt:
        errors.print("\n[yellow]Interrupted.[/]")
        return 130
