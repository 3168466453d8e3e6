"""`bench new NAME`: a plugin skeleton to fill in, that loads, is listed, and fails
`bench check` with FILL IN until it is written."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape

from bench import scaffold
from bench.cli.options import Groups, UsageError
from bench.cli.terminal import console
from bench.names import NAME_RULE


def add_parser(commands: argparse._SubParsersAction, groups: Groups) -> None:
    parser = commands.add_parser("new", help="write a plugin skeleton to fill in")
    parser.add_argument("name", metavar="NAME", help=NAME_RULE)
    parser.add_argument(
        "--model", choices=tuple(scaffold.MODELS), default="mlp", help="default: mlp"
    )
    parser.add_argument(
        "--lang",
        choices=scaffold.LANGUAGES,
        default="python",
        help="python (default), or rust: a crate built with PyO3 + maturin and its Python face",
    )
    parser.add_argument(
        "--dir", type=Path, default=Path("implementations"), help="where to write NAME/"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        module = scaffold.new_plugin(args.name, args.model, args.dir, args.lang)
    except scaffold.ScaffoldError as error:
        raise UsageError(str(error)) from None
    folder = module.parent.parent if module.suffix == ".rs" else module.parent
    console.print(f"Wrote {escape(str(folder))}/")
    console.print(escape(scaffold.next_steps(args.name, module)))
    return 0
