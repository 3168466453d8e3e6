"""`bench show [RUN]`: the summary table of a stored run; writes nothing."""

from __future__ import annotations

import argparse

from bench.cli.options import Groups, open_run
from bench.cli.terminal import print_run


def add_parser(commands: argparse._SubParsersAction, groups: Groups) -> None:
    parser = commands.add_parser(
        "show", parents=[groups.results], help="summary table of a stored run"
    )
    parser.add_argument("run", nargs="?", help="run id or folder (default: the latest)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print_run(open_run(args.results_dir, args.run))
    return 0
