"""`bench check IMPL`: the conformance suite, the executable definition of the plugin
contract, on any implementation found (including one just written)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape

from bench import plugins
from bench.cli.listing import print_broken
from bench.cli.options import Groups, UsageError, split
from bench.cli.terminal import console
from bench.execution import devices, plan
from bench.names import UnknownName, closest


def add_parser(commands: argparse._SubParsersAction, groups: Groups) -> None:
    parser = commands.add_parser(
        "check", parents=[groups.plugins], help="run the conformance suite on an implementation"
    )
    parser.add_argument("impl", metavar="IMPL", help="implementation name (see `bench list`)")
    parser.add_argument(
        "--scenario", "-s", action="append", metavar="S", help="only these scenario(s)"
    )
    parser.add_argument(
        "--device",
        metavar="D",
        help="run the checks on this device (cuda, cuda:1), held to the same float64 reference "
        "with TF32 off; default: the CPU when the implementation declares it",
    )
    parser.set_defaults(func=run)


def _unknown(name: str, found: plugins.Registry, folders: list[Path]) -> str:
    """Why `name` is not found: what each --plugins folder does register (and what it defines
    without registering, or fails to import), then every name there is."""
    said = [f"unknown implementation {name!r}."]
    for folder in folders:
        inside = f"path:{Path(folder).resolve()}"
        here = sorted({p.name for p in found.plugins if p.source.startswith(inside)})
        forgotten = [u.what for u in found.unregistered if u.source.startswith(inside)]
        broken = [
            b.source.removeprefix("path:") for b in found.broken if b.source.startswith(inside)
        ]
        text = f"{folder} registers " + (", ".join(here) if here else "no implementation")
        if here and (suggestion := closest(name, here)):
            text += f" (did you mean {suggestion!r}?)"
        if forgotten:
            text += (
                f"; it defines {', '.join(forgotten)} without registering it (forgot @register?)"
            )
        if broken:
            text += f"; {', '.join(broken)} failed to import (see above)"
        said.append(text + ".")
    if not folders:
        suggestion = closest(name, found.names())
        if suggestion:
            said.append(f"Did you mean {suggestion!r}?")
    said.append(f"Valid: {', '.join(found.names())}.")
    return " ".join(said)


def run(args: argparse.Namespace) -> int:
    from bench import conformance  # imports the reference math only for this command

    found = plugins.discover(args.plugins)
    print_broken(found)
    if args.impl not in found.names():
        raise UnknownName(_unknown(args.impl, found, args.plugins))
    scenarios = plan.select_scenarios(split(args.scenario))
    models = {s.model for s in scenarios}
    chosen = [p for p in found.plugins if p.name == args.impl and p.model in models]
    if not chosen:
        raise UsageError(f"{args.impl} implements none of the models of the selected scenarios")
    failed = 0
    for plugin in chosen:
        console.print(f"[bold]{plugin.name}[/] ({plugin.model}) from {escape(plugin.source)}")
        results = (
            _checks_on_device(conformance, plugin, scenarios, args.device)
            if plugin.available
            else [conformance.CheckResult("requirements", False, plugin.unavailable_reason or "")]
        )
        for r in results:
            mark = "[red]FAIL[/]" if not r.passed else "[yellow]skip[/]" if r.skipped else "pass"
            console.print(f"  {mark} {escape(r.name)}: {escape(r.detail)}")
        failed += sum(not r.passed for r in results)
    console.print("[red]conformance: failed[/]" if failed else "[green]conformance: passed[/]")
    return 1 if failed else 0


def _checks_on_device(conformance, plugin: plugins.Plugin, scenarios, device: str | None):
    """The checks, on `device` when one is asked for: a GPU this machine lacks is the user's
    mistake to hear about, not a failed check."""
    cls = plugin.cls  # imports the implementation, and so its framework, which is asked
    if device is not None and (why := devices.unavailable(device)):
        raise UsageError(f"--device {device}: {why}")
    if device is not None:
        devices.exact_arithmetic(device)
    return conformance.run_checks(cls, scenarios, device=device)
