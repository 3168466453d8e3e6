"""The options of `bench run`, which `bench sweep` takes too, and which of them decide what a
run measures (`--resume` refuses those)."""

from __future__ import annotations

import argparse

from bench import datasets
from bench.cli.options import COUNT, POSITIVE_INT, SECONDS, percentage, rounds_range

DEFAULT_PROFILE = "quick"
# The options that decide what a run measures, by argparse destination. `--resume` finishes a
# run as it was planned, so it refuses them rather than ignore them (none has a default: any
# value is one the user gave).
PLAN_OPTIONS = {
    "scenario": "--scenario",
    "impl": "--impl",
    "profile": "--profile",
    "dataset": "--dataset",
    "rounds": "--rounds",
    "processes": "--processes",
    "target": "--target",
    "warmup": "--warmup",
    "threads": "--threads",
    "device": "--device",
    "timeout": "--timeout",
    "round_cap": "--round-cap",
    "retry_disturbed": "--retry-disturbed",
    "seed": "--seed",
    "no_check": "--no-check",
}


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options of `bench run`, which `bench sweep` takes too."""
    parser.add_argument(
        "--scenario", "-s", action="append", help="scenario name(s), comma-separated"
    )
    parser.add_argument("--impl", "-i", action="append", help="implementation name(s)")
    parser.add_argument("--profile", "-p", help=f"smoke, {DEFAULT_PROFILE} (default) or full")
    parser.add_argument(
        "--dataset",
        metavar="NAME|PATH",
        help="image dataset instead of the scenario's: "
        + ", ".join(n for n in datasets.NAMES if n != "blobs")
        + ", or your own: a folder of IDX files or an .npz with x_train, y_train, x_test, y_test",
    )
    parser.add_argument(
        "--rounds",
        type=rounds_range,
        metavar="N|MIN-MAX",
        help="measured rounds per case, in all its processes: exactly N, or from MIN to MAX "
        "until the median's interval reaches the target (default: the profile's)",
    )
    parser.add_argument(
        "--processes",
        type=POSITIVE_INT,
        metavar="N",
        help="worker processes per case, at least (default: the profile's; quick 2)",
    )
    parser.add_argument(
        "--target",
        type=percentage,
        metavar="PCT",
        help="relative half-width of the median's interval a case measures until, e.g. 5%% "
        "(default: the profile's)",
    )
    parser.add_argument(
        "--warmup", type=COUNT, help="warm-up rounds per process; the first's is the cold start"
    )
    parser.add_argument(
        "--threads",
        "-t",
        action="append",
        help="thread count(s), e.g. 1,2 (default: all cores allotted)",
    )
    parser.add_argument("--device", action="append", help="device(s), default cpu")
    parser.add_argument("--timeout", type=SECONDS, help="seconds per case before it is killed")
    parser.add_argument(
        "--round-cap",
        type=SECONDS,
        metavar="SECONDS",
        help="stop each training round after this much training time; marked capped",
    )
    parser.add_argument(
        "--retry-disturbed",
        type=COUNT,
        metavar="N",
        help="re-run disturbed rounds (their threads waited for a CPU), up to N re-runs per "
        "case; the disturbed ones stay recorded, out of the statistics",
    )
    parser.add_argument("--seed", type=COUNT, help="base seed (default 0); round r uses seed+r")
    parser.add_argument("--offline", action="store_true", help="never download datasets")
    parser.add_argument(
        "--no-check",
        action="store_true",
        default=None,
        help="skip the conformance checks run before timing; every number is flagged unverified",
    )
    parser.add_argument(
        "--no-peak", action="store_true", help="skip measuring the machine's GEMM/bandwidth peak"
    )
    cluster = parser.add_argument_group("cluster (docs/cluster.md)")
    cluster.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="run the cases on a Dask cluster: tcp://HOST:PORT of its scheduler, or local:N "
        "for N worker processes on this machine (needs bench[cluster])",
    )
    cluster.add_argument(
        "--cluster-parallel",
        action="store_true",
        help="let cases share a host (one per worker thread), for runs about correctness or "
        "throughput: their times are flagged; by default a host runs one case at a time",
    )
    cluster.add_argument(
        "--cluster-retries",
        type=COUNT,
        default=1,
        metavar="N",
        help="times a case whose worker was lost is retried on another worker (default 1)",
    )
    parser.add_argument(
        "--remeasure-peak",
        action="store_true",
        help="measure the machine's peak now, even if it was measured here in the last "
        "30 days (it is cached per machine)",
    )
    parser.add_argument(
        "--resume",
        metavar="RUN",
        help="finish the unfinished cases of RUN, as it was planned (takes no option that "
        "changes the plan)",
    )
