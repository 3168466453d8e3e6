"""`bench doctor`: is this machine fit to measure on? Each check with what it saw and advice;
exit 1 when a finding is serious (rounds would very likely be disturbed)."""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

from bench.cli.options import SECONDS, Groups
from bench.cli.options import thread_counts as parse_thread_counts
from bench.cli.terminal import console
from bench.execution import doctor

STYLE = {
    doctor.OK: "green",
    doctor.NOTE: "cyan",
    doctor.WARNING: "yellow",
    doctor.SERIOUS: "bold red",
}


def add_parser(commands: argparse._SubParsersAction, groups: Groups) -> None:
    parser = commands.add_parser(
        "doctor", help="is this machine fit to measure on? what to change if not"
    )
    parser.add_argument(
        "--threads",
        "-t",
        action="append",
        help="the thread count(s) you mean to run with (default: all cores allotted)",
    )
    parser.add_argument(
        "--sample",
        type=SECONDS,
        default=1.0,
        metavar="SECONDS",
        help="how long to watch the other processes (default 1)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    findings = doctor.examine(parse_thread_counts(args.threads), sample_s=args.sample)
    table = Table.grid(padding=(0, 1))
    table.add_column(justify="right", no_wrap=True)
    table.add_column()
    for finding in findings:
        text = f"[bold]{escape(finding.check)}[/]: {escape(finding.seen)}"
        if finding.advice:
            text += f"\n→ {escape(finding.advice)}"
        table.add_row(f"[{STYLE[finding.level]}]{finding.level}[/]", text)
    console.print(table)
    serious = doctor.serious(findings)
    if serious:
        console.print(
            f"\n[bold red]{len(serious)} serious finding(s)[/]: rounds measured now would very "
            "likely be disturbed (and flagged so)."
        )
    return 1 if serious else 0
