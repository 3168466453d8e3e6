"""`bench data [status | fetch NAME | verify [NAME]]`: where each dataset is, download one,
check every file found."""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

from bench import datasets
from bench.cli.options import Groups, UsageError
from bench.cli.terminal import console
from bench.names import check_name


def add_parser(commands: argparse._SubParsersAction, groups: Groups) -> None:
    parser = commands.add_parser("data", help="where each dataset is; fetch; verify")
    parser.add_argument(
        "action", nargs="?", choices=("status", "fetch", "verify"), default="status"
    )
    parser.add_argument("name", nargs="?", help="dataset name")
    parser.add_argument("--force", action="store_true", help="fetch again even if present")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "fetch":
        if not args.name:
            raise UsageError("bench data fetch: name a dataset: " + ", ".join(datasets.NAMES))
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
