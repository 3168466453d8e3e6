"""`bench report [RUN ...]`: the self-contained HTML report (or a Markdown summary)."""

from __future__ import annotations

import argparse

from bench.cli.options import Groups, open_run
from bench.report import FORMATS


def add_parser(commands: argparse._SubParsersAction, groups: Groups) -> None:
    parser = commands.add_parser(
        "report",
        parents=[groups.results, groups.reports],
        help="write the self-contained HTML report",
    )
    parser.add_argument("runs", nargs="*", metavar="RUN", help="run id(s) (default: latest)")
    parser.add_argument("--baseline", metavar="RUN", help="compare every case with RUN")
    parser.add_argument("--format", choices=FORMATS, default="html")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench import report

    stores = [open_run(args.results_dir, name) for name in args.runs or [None]]
    baseline = open_run(args.results_dir, args.baseline) if args.baseline else None
    path = report.write(
        stores, report.reports_root(args.reports_dir), baseline=baseline, fmt=args.format
    )
    print(path)  # plain print: a long path must stay on one line for scripts
    return 0
