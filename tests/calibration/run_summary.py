"""What a stored run cost and how precise it is, case by case: for the note on `make bench`.

    python tests/calibration/run_summary.py [RUN] [--results-dir DIR]

Prints, per case: status, the measured rounds and the worker processes they ran in, why it
stopped measuring, the half-width of its median's 95 % interval against the profile's target,
and the seconds the case took (every process, start-up included); then the run's wall time
(run.json's start to finish), the sum of the cases' seconds, and the cases that missed their
target. RUN defaults to the latest run.
"""

from __future__ import annotations

import argparse
import datetime as dt

from bench.analysis.tables import tidy_tables
from bench.cli.options import open_run
from bench.report.format import fmt_half_width


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", help="run id or folder (default: the latest)")
    parser.add_argument("--results-dir")
    args = parser.parse_args()
    store = open_run(args.results_dir, args.run)
    records = {record.case.id: record for record in store.cases()}
    summary = tidy_tables(list(records.values()), store.meta, store.scenarios())["summary"]
    print(f"run {store.run_id} ({store.meta.profile}): {len(records)} cases")
    header = f"{'case':52} {'status':9} {'rounds':>6} {'proc.':>5} {'stopped':11} "
    print(header + f"{'±95% CI':>9} {'target':>7} {'seconds':>8}")
    total, missed = 0.0, []
    for row in summary.sort_values("case_id").to_dict("records"):
        record = records[row["case_id"]]
        seconds = record.worker_seconds or 0.0
        total += seconds
        if row.get("target_met") == False:  # noqa: E712 (numpy bools)
            missed.append(row["case_id"])
        print(
            f"{row['case_id']:52} {row['status']:9} {row['rounds']:6d} "
            f"{int(row.get('processes') or 0):5d} {row.get('stopped') or '-'!s:11} "
            f"{fmt_half_width(row.get('interval_half_width')):>9} "
            f"{fmt_half_width(row.get('interval_target')):>7} {seconds:8.1f}"
        )
    meta = store.meta
    if meta.started_at and meta.finished_at:
        wall = dt.datetime.fromisoformat(meta.finished_at) - dt.datetime.fromisoformat(
            meta.started_at
        )
        print(f"run wall time (run.json): {wall.total_seconds() / 60:.1f} min")
    print(f"cases' own seconds, summed: {total / 60:.1f} min")
    print(f"cases that missed their interval target: {len(missed)}")
    for case_id in missed:
        print(f"  {case_id}")


if __name__ == "__main__":
    main()
