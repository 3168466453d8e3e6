"""`bench list`: the scenarios, and every implementation found, available or why not."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from bench import datasets, plugins
from bench.cli.options import Groups
from bench.cli.terminal import console, errors
from bench.scenarios import PROFILES, Scenario, known, origin
from bench.serving.servers import LOAD_GENERATOR, RUST_SERVERS, missing_program


def add_parser(commands: argparse._SubParsersAction, groups: Groups) -> None:
    parser = commands.add_parser(
        "list", parents=[groups.plugins], help="scenarios and implementations"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    found = plugins.discover(args.plugins)
    table = Table(title="Scenarios", title_justify="left")
    for column in ("scenario", "model", "dataset", "smoke / quick / full budget", "what"):
        table.add_column(column)
    for s in known().values():
        budgets = " / ".join(_budget_text(s, p) for p in PROFILES)
        source = origin(s.name)
        what = escape(s.title) + (
            "" if source == "built-in" else f"\n[dim]from {escape(source)}[/]"
        )
        table.add_row(s.name, s.model, escape(dataset_text(s.dataset)), budgets, what)
    console.print(table)

    table = Table(title="Implementations", title_justify="left")
    for column in ("implementation", "model", "framework", "status", "source"):
        table.add_column(column, overflow="fold")
    for p in sorted(found.plugins, key=lambda p: (p.name, p.model)):
        if p.available:
            unsupported = [
                f"{s.name}: {why}"
                for s in known().values()
                if s.model == p.model and (why := p.why_unsupported(s))
            ]
            status = "[green]available[/]" + "".join(
                f"\n[yellow]not supported[/] {escape(u)}" for u in unsupported
            )
        else:
            status = f"[yellow]skipped[/]: {escape(p.unavailable_reason or '')}"
        table.add_row(p.name, p.model, escape(p.framework), status, escape(p.source))
    for server in RUST_SERVERS.values():
        missing = missing_program(server.program) or missing_program(LOAD_GENERATOR)
        status = f"[yellow]skipped[/]: {escape(missing)}" if missing else "[green]available[/]"
        where = f"serving scenarios only; {server.program}"
        table.add_row(server.name, "kmeans", escape(server.framework), status, escape(where))
    console.print(table)
    print_broken(found)
    return 0


def print_broken(found: plugins.Registry, consequence: str = "") -> None:
    """The plugins that failed to load, and the classes a plugin forgot to register."""
    for broken in found.broken:
        errors.print(
            f"[red]broken plugin[/] {escape(broken.source)}: {escape(broken.error)}{consequence}"
        )
    for forgotten in found.unregistered:
        errors.print(
            f"[yellow]warning:[/] {escape(forgotten.what)} is never registered: forgot @register?"
        )


def dataset_text(dataset: str) -> str:
    """A scenario's dataset as tables show it: a built-in name, or a file's own name."""
    return dataset if datasets.is_name(dataset) else Path(dataset).name


def _budget_text(scenario: Scenario, profile: str) -> str:
    budget = scenario.budget(profile)
    if budget.n_samples:
        return f"{budget.n_samples:,} pts"
    if budget.steps:
        return f"{budget.steps:,} steps"
    if budget.epochs:
        return f"{budget.epochs:g} ep"
    return "all points"
