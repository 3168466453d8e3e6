"""`bench run`: plan the cases, measure each in a fresh process, store the run, print its
summary. Also the machinery `bench sweep` shares: a new run, its execution with progress,
and the advice to resume it after Ctrl-C or a full disk."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import errno
import shlex
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bench import outcomes, plugins
from bench.cli.listing import print_broken
from bench.cli.options import (
    Groups,
    UsageError,
    split,
)
from bench.cli.options import thread_counts as parse_thread_counts
from bench.cli.run_datasets import resolve_datasets
from bench.cli.run_options import DEFAULT_PROFILE, PLAN_OPTIONS, add_run_options
from bench.cli.terminal import console, errors, print_run
from bench.execution import cluster, doctor, plan, runner, threads
from bench.records import (
    BrokenPluginRecord,
    Case,
    CaseRecord,
    Conformance,
    RunMeta,
)
from bench.scenarios import scenario_to_json
from bench.store import RunStore, new_run_id, results_root

PROJECT_DIR = Path(__file__).resolve().parents[2]
# How long `bench run` watches the other processes before it starts (`bench doctor`: 1 s).
DOCTOR_SAMPLE_S = 0.3
# Errors that stop a run because its files cannot be written: what happened, what frees the way.
_CANNOT_WRITE = {
    errno.ENOSPC: ("disk full", "free some space"),
    errno.EDQUOT: ("disk quota exceeded", "free some space"),
    errno.EACCES: ("permission denied", "make it writable"),
    errno.EPERM: ("permission denied", "make it writable"),
    errno.EROFS: ("read-only file system", "make it writable"),
}


def add_parser(commands: argparse._SubParsersAction, groups: Groups) -> None:
    parser = commands.add_parser(
        "run", parents=[groups.plugins, groups.results], help="measure cases and store a run"
    )
    add_run_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.resume:
        return resume(args)
    with (
        executor_for(args) as executor,
        new_run(args, parse_thread_counts(args.threads), executor=executor) as (store, cases),
    ):
        return execute_stored(store, cases, args, executor) or finish(store)


@contextlib.contextmanager
def executor_for(args: argparse.Namespace) -> Iterator[runner.Executor]:
    """Where the cases run: this machine, or the Dask cluster of `--cluster` (connected for
    the length of the block)."""
    if not args.cluster:
        if args.cluster_parallel:
            raise UsageError("--cluster-parallel applies to a run on a cluster: add --cluster")
        yield runner.LocalExecutor()
        return
    options = cluster.ClusterOptions(
        address=args.cluster,
        parallel=args.cluster_parallel,
        retries=args.cluster_retries,
        download=not args.offline,
        measure_peak=not args.no_peak,
    )
    with contextlib.ExitStack() as connection:
        with console.status(f"Connecting to the Dask cluster {escape(args.cluster)}"):
            client = connection.enter_context(cluster.connect(args.cluster))
        yield cluster.DaskExecutor(
            client, options, notify=lambda m: errors.print(f"[yellow]{escape(m)}[/]")
        )


def profile_of(args: argparse.Namespace) -> str:
    return args.profile or DEFAULT_PROFILE


def resume(args: argparse.Namespace, more_plan_options: Mapping[str, str] = {}) -> int:
    """Finish RUN as it was planned, holding its writer lock."""
    given = [
        flag
        for dest, flag in {**PLAN_OPTIONS, **more_plan_options}.items()
        if getattr(args, dest, None) is not None
    ]
    if given:
        raise UsageError(
            f"--resume {args.resume} finishes the run as it was planned (its plan is in "
            f"run.json), so it takes no option that changes what is run: {', '.join(given)}. "
            "Drop them to finish the run, or leave out --resume to start a new run with them"
        )
    store = RunStore.open(results_root(args.results_dir), args.resume)
    with store.writing(), executor_for(args) as executor:
        cases = list(store.meta.plan)
        pending = len(cases) - len(store.finished() & {c.id for c in cases})
        cluster = executor.prepare([c for c in cases if c.id not in store.finished()])
        if cluster is not None:
            store.update_meta(cluster=_merged_cluster(store.meta.cluster, cluster))
        console.print(f"Resuming run [bold]{store.run_id}[/]: {pending} of {len(cases)} cases left")
        if cluster is None:  # the cases run here: is this machine fit for it?
            check_machine(sorted({c.threads for c in cases}))
        return execute_stored(store, cases, args, executor) or finish(store)


def _merged_cluster(before: dict | None, now: dict) -> dict:
    """What run.json says of the cluster after a resume: every worker that ran a case."""
    workers = {**(before or {}).get("workers", {}), **now["workers"]}
    return {**now, "workers": workers}


@contextlib.contextmanager
def new_run(
    args: argparse.Namespace,
    thread_counts: Sequence[int],
    overrides: Sequence[dict] = ({},),
    *,
    executor: runner.Executor,
) -> Iterator[tuple[RunStore, list[Case]]]:
    """Plan the run the options ask for, let the executor check it can run the plan, store
    the run's metadata, measure the machine's peak (a cluster's workers measure their own);
    the block runs holding the new run's writer lock."""
    from bench.execution import environment, peak

    profile = profile_of(args)
    found = plugins.discover(args.plugins)
    print_broken(found, " (its cases are missing from this run; `bench list` shows it too)")
    scenarios = plan.select_scenarios(split(args.scenario))
    implementations = split(args.impl)
    devices = split(args.device) or ["cpu"]
    thread_counts = list(thread_counts) or [threads.available_cores()]
    # Every name is checked before the (possibly slow) dataset resolution.
    plan.check_selection(found, implementations, profile, devices)
    for count in sorted(set(thread_counts)):
        if warning := threads.oversubscription_warning(count):
            errors.print(f"[yellow]warning:[/] {escape(warning)}")
    # On a cluster the cases run elsewhere: this machine's state says nothing of them.
    findings = None if args.cluster else check_machine(thread_counts)
    resolutions = resolve_datasets(scenarios, args)
    cases = plan.plan(
        found,
        scenarios,
        implementations=implementations,
        profile=profile,
        thread_counts=thread_counts,
        devices=devices,
        rounds=args.rounds[0] if args.rounds else None,
        max_rounds=args.rounds[1] if args.rounds else None,
        processes=args.processes,
        interval_target=args.target,
        warmup_rounds=args.warmup,
        timeout_s=args.timeout,
        round_cap_s=args.round_cap,
        retry_disturbed=args.retry_disturbed or 0,
        seed=args.seed or 0,
        datasets=resolutions,
        overrides=overrides,
    )
    if not cases:
        raise UsageError(
            "nothing to run: no implementation matches the selected scenarios (see `bench list`)"
        )
    if args.no_check:
        unverified = Conformance(outcomes.UNVERIFIED)
        cases = [replace(c, conformance=unverified) if c.will_run else c for c in cases]
    cluster = executor.prepare(cases)
    meta = RunMeta(
        run_id=new_run_id(profile),
        started_at=dt.datetime.now().isoformat(timespec="seconds"),
        command="bench " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        profile=profile,
        datasets=resolutions,
        broken_plugins=tuple(
            BrokenPluginRecord(b.source, b.error, b.details) for b in found.broken
        ),
        environment=environment.fingerprint(max(thread_counts), PROJECT_DIR),
        plan=tuple(cases),
        scenarios={s.name: scenario_to_json(s) for s in scenarios},
        cluster=cluster,
        doctor=None if findings is None else tuple(f.to_json() for f in findings),
    )
    store = RunStore.create(results_root(args.results_dir), meta)
    with store.writing():
        console.print(
            f"Run [bold]{store.run_id}[/]: {len(cases)} cases, profile {profile}, "
            f"results in {escape(str(store.directory))}"
        )
        if not args.no_peak and cluster is None:
            with console.status("The machine's peak GEMM rate and memory bandwidth"):
                peaks = {
                    str(n): peak.machine_peak(n, meta.environment, remeasure=args.remeasure_peak)
                    for n in sorted(set(thread_counts))
                }
                # A GPU case's GFLOP/s are a share of its GPU's peak, stored under its name.
                for device in sorted({c.device for c in cases if c.will_run} - {"cpu"}):
                    peaks[device] = peak.machine_peak(
                        1, meta.environment, remeasure=args.remeasure_peak, device=device
                    )
            store.update_meta(machine_peak=peaks)
            console.print(_peak_line(peaks))
        yield store, cases


def check_machine(thread_counts: Sequence[int]) -> list[doctor.Finding]:
    """`bench doctor`'s checks, on a short sample; one line when a finding is serious."""
    findings = doctor.examine(thread_counts, sample_s=DOCTOR_SAMPLE_S)
    if serious := doctor.serious(findings):
        errors.print(
            "[bold yellow]bench doctor:[/] "
            + escape("; ".join(f.seen.partition(": ")[0] for f in serious))
            + ". Rounds will likely be disturbed (and flagged); `bench doctor` names the "
            "processes and says what to do."
        )
    return findings


def _peak_line(peaks: Mapping[str, dict]) -> str:
    """Where the run's peak figures come from: measured now, or the cache (with their date)."""
    from bench.execution.peak import CACHED, MAX_AGE_DAYS

    dates = {p.get("measured_at", "?") for p in peaks.values() if p.get("source") == CACHED}
    if dates:
        return (
            f"Machine peak: from the cache, measured {', '.join(sorted(dates))} (kept "
            f"{MAX_AGE_DAYS} days; --remeasure-peak measures it now)"
        )
    if failed := [where for where, p in peaks.items() if "error" in p]:
        named = ", ".join(f"{w} threads" if w.isdigit() else w for w in failed)
        return f"Machine peak: could not be measured for {named} (run.json says why)"
    return "Machine peak: measured now, and cached for the next runs on this machine"


def execute_stored(
    store: RunStore, cases: list[Case], args: argparse.Namespace, executor: runner.Executor
) -> int:
    """Run the cases; on Ctrl-C, a lost cluster or a folder that can no longer be written (a
    full disk) say how to resume. Returns the exit code."""
    try:
        _execute(store, cases, executor)
    except KeyboardInterrupt:
        errors.print(
            f"\n[yellow]Interrupted.[/] {len(store.finished())} finished case(s) are "
            f"stored in {escape(str(store.directory))}. Finish the run with:"
        )
        _print_command(resume_command(store, args))
        return 130
    except cluster.ClusterLost as error:
        errors.print(
            f"[red]error:[/] {escape(str(error))}. {len(store.finished())} finished case(s) "
            f"are stored in {escape(str(store.directory))}; the cases that were running are "
            "recorded as interrupted. Finish the run with:"
        )
        _print_command(resume_command(store, args))
        return 1
    except OSError as error:
        if error.errno not in _CANNOT_WRITE:
            raise
        problem, fix = _CANNOT_WRITE[error.errno]
        errors.print(
            f"[red]error:[/] {problem} while writing "
            f"{escape(str(error.filename or store.directory))}. Finished cases are intact in "
            f"{escape(str(store.directory))}: {fix}, then run:"
        )
        _print_command(resume_command(store, args))
        return 1
    return 0


def resume_command(store: RunStore, args: argparse.Namespace) -> str:
    """The command that finishes the run."""
    command = f"bench {args.command} --resume {shlex.quote(store.run_id)}"
    if args.results_dir:
        command += f" --results-dir {shlex.quote(str(results_root(args.results_dir)))}"
    if args.cluster:
        command += f" --cluster {shlex.quote(args.cluster)}"
        command += " --cluster-parallel" if args.cluster_parallel else ""
    return command


def _print_command(command: str) -> None:
    """A command to paste, on a line of its own, never wrapped or cropped whatever the width
    of the terminal or of a pipe, and never read as markup."""
    errors.print(command, soft_wrap=True, markup=False, highlight=False)


def _execute(store: RunStore, cases: list[Case], executor: runner.Executor) -> None:
    """Run the cases with a progress bar; its ETA comes from the pace at which cases end,
    so on a cluster it counts every worker. Several cases running at once are all named."""
    todo = _gated(store, [c for c in cases if c.id not in store.finished()])
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
        running: dict[str, str] = {}

        def describe_running() -> None:
            names = list(running.values())
            description = (
                names[0] if len(names) == 1 else f"{len(names)} running: " + ", ".join(names)
            )
            progress.update(task, description=description)

        def on_start(case: Case) -> None:
            running[case.id] = f"{case.scenario} · {case.implementation} · {case.threads}t"
            describe_running()

        def on_done(case: Case, record: CaseRecord) -> None:
            running.pop(case.id, None)
            if running:
                describe_running()
            if record.status != outcomes.OK:
                progress.console.print(
                    f"[yellow]{case.id}: {record.status}[/] {escape(str(record.reason or ''))}"
                )
            progress.advance(task)

        runner.execute(store, todo, executor=executor, on_start=on_start, on_done=on_done)
    store.update_meta(finished_at=dt.datetime.now().isoformat(timespec="seconds"))


def _gated(store: RunStore, cases: list[Case]) -> list[Case]:
    """The cases with the conformance gate's verdict, printed pair by pair; the run's plan
    is updated with them."""
    from bench.conformance import gate

    passed_before: list[str] = []  # conforming pairs read from the cache: one line for all

    def show(case: Case, verdict: gate.Verdict) -> None:
        found = verdict.conformance
        cost = "cached" if found.cached else f"{found.seconds:.1f} s"
        pair = f"{case.implementation} on {case.scenario}"
        if found.cached and found.verdict == outcomes.CONFORMING and not verdict.unsupported:
            passed_before.append(pair)
        elif verdict.unsupported:
            console.print(
                f"conformance: {pair}: [yellow]not supported[/] ({escape(verdict.unsupported)})"
            )
        elif found.verdict == outcomes.CONFORMING:
            console.print(f"conformance: {pair}: passed {found.checks} checks ({cost})")
        else:
            console.print(
                f"conformance: {pair}: [red]FAILED[/] {escape(found.failed_checks)} ({cost}); "
                "its cases run, flagged non-conforming and never ranked"
            )

    if any(c.will_run and c.conformance is None for c in cases):
        with console.status("Checking conformance before timing (cached by plugin source)"):
            definitions = {n: scenario_to_json(s) for n, s in store.scenarios().items()}
            gated = gate.gate_cases(cases, definitions, on_verdict=show)
        if passed_before:
            console.print(
                f"conformance: {len(passed_before)} pair(s) passed every check, as cached "
                f"({', '.join(passed_before[:3])}{' …' if len(passed_before) > 3 else ''})"
            )
        by_id = {case.id: case for case in gated}
        store.update_meta(plan=tuple(by_id.get(case.id, case) for case in store.meta.plan))
        return gated
    return cases


def finish(store: RunStore) -> int:
    print_run(store)
    return 0
