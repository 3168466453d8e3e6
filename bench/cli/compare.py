"""`bench compare A B`: run B against run A, case by case; `--fail-above` makes it a CI gate
(exit 1 on a regression beyond the noise)."""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

from bench.analysis import compare
from bench.analysis.intervals import COVERAGE_LABEL
from bench.cli.options import Groups, UsageError, open_run
from bench.cli.terminal import console, errors
from bench.report.format import MISSING, finite, fmt_change, fmt_num, fmt_time

COLUMNS = ("scenario", "implementation", "thr", "baseline", "candidate", "change",
           "95 % CI of change", "p (M-W)", "verdict")  # fmt: skip
STYLE = {compare.REGRESSED: "bold red", compare.IMPROVED: "green"}


def add_parser(commands: argparse._SubParsersAction, groups: Groups) -> None:
    parser = commands.add_parser(
        "compare", parents=[groups.results], help="run B against run A, case by case"
    )
    parser.add_argument("baseline", metavar="A", help="baseline run id or folder")
    parser.add_argument("candidate", metavar="B", help="candidate run id or folder")
    parser.add_argument(
        "--fail-above",
        metavar="PCT",
        help="exit 1 if a case is significantly slower by more than PCT (e.g. 5%%)",
    )
    parser.set_defaults(func=run)


def _interval(case: compare.CaseComparison) -> str:
    if not finite(case.low):
        return MISSING
    text = f"{case.low - 1:+.1%} … {case.high - 1:+.1%}"
    if case.interval_label != COVERAGE_LABEL:  # the noise between processes is not in it
        text += "\n[yellow]rounds of one process only[/]"
    return text


def run(args: argparse.Namespace) -> int:
    baseline = open_run(args.results_dir, args.baseline)
    candidate = open_run(args.results_dir, args.candidate)
    try:
        threshold = compare.parse_threshold(args.fail_above or "5%")
    except ValueError as error:
        raise UsageError(f"--fail-above: {error}") from None
    result = compare.compare_runs(baseline, candidate, threshold)
    for warning in result.warnings:
        errors.print(f"[yellow]warning:[/] {escape(warning)}")
    table = Table(
        title=f"{candidate.run_id} against {baseline.run_id}: median time per case",
        title_justify="left",
    )
    for column in COLUMNS:
        textual = column in ("scenario", "implementation", "verdict")
        table.add_column(column, justify="left" if textual else "right")
    for case in result.cases:
        verdict = escape(case.verdict + (f" ({case.note})" if case.note else ""))
        if case.verdict in STYLE:
            verdict = f"[{STYLE[case.verdict]}]{verdict}[/]"
        table.add_row(
            escape(case.scenario),
            escape(case.implementation),
            str(case.threads),
            fmt_time(case.baseline_median, case.baseline_extrapolated),
            fmt_time(case.candidate_median, case.candidate_extrapolated),
            fmt_change(case.ratio),
            _interval(case),
            fmt_num(case.p_value, 2),
            verdict,
        )
    if result.cases or not result.serving:
        console.print(table)
        console.print(
            "The interval holds the noise between worker processes (pooled over both runs) as "
            f"well as between rounds: a case is slower when it lies above 0 and the change "
            f"exceeds {threshold:.0%}."
        )
    print_serving_comparison(result)
    compared = [c.verdict for c in [*result.cases, *result.serving]]
    if not any(verdict != compare.NOT_COMPARABLE for verdict in compared):
        errors.print(
            f"[red]nothing was comparable[/]: no case has measured rounds in both "
            f"{escape(baseline.run_id)} and {escape(candidate.run_id)} (cases are matched by "
            "scenario, implementation, threads, device and sweep sizes)"
            + (
                "; --fail-above cannot pass a comparison that compared nothing"
                if args.fail_above
                else ""
            )
        )
        return 1 if args.fail_above else 0
    regressions = result.regressions
    console.print(
        f"{len(regressions)} case(s) slower by more than {threshold:.0%} beyond the noise"
        + (": " + ", ".join(escape(c.case_id) for c in regressions) if regressions else "")
    )
    serving = [c for c in result.serving if c.verdict == compare.REGRESSED]
    if result.serving:
        console.print(
            f"{len(serving)} serving case(s) with fewer requests per server CPU-second by more "
            f"than {threshold:.0%}"
            + (
                ": " + ", ".join(f"{escape(c.case_id)} (batch {c.batch})" for c in serving)
                if serving
                else ""
            )
        )
    return 1 if args.fail_above and (regressions or serving) else 0


SERVING_COLUMNS = ("scenario", "server", "batch", "req/server CPU-s", "change",
                   "max req/s change", "p50 change (common rate)", "verdict")  # fmt: skip


def print_serving_comparison(result: compare.Comparison) -> None:
    """Serving cases, matched by case and request size: one measurement per level, so the
    verdict is the threshold's, on requests per server CPU-second."""
    if not result.serving:
        return
    table = Table(
        title=f"{result.candidate} against {result.baseline}: serving, per server and request "
        "size (one measurement each, no interval)",
        title_justify="left",
    )
    for column in SERVING_COLUMNS:
        table.add_column(
            column, justify="left" if column in ("scenario", "server", "verdict") else "right"
        )
    for case in result.serving:
        verdict = escape(case.verdict + (f" ({case.note})" if case.note else ""))
        if case.verdict in STYLE:
            verdict = f"[{STYLE[case.verdict]}]{verdict}[/]"
        old, new = case.baseline, case.candidate
        table.add_row(
            escape(case.case_id.split("--")[0]),
            escape(f"{case.implementation} ({case.server})"),
            f"{case.batch:,}",
            f"{fmt_num(old.requests_per_cpu_second if old else None, 4)} → "
            f"{fmt_num(new.requests_per_cpu_second if new else None, 4)}",
            fmt_change(case.cpu_ratio),
            fmt_change(case.rps_ratio),
            fmt_change(case.p50_ratio),
            verdict,
        )
    console.print(table)
