"""What a run stores, typed: the case, each round, the case's outcome, the run's metadata.

Every producer (planner, worker, suites, runner) builds these and every reader (store,
analysis, report, CLI) gets them back, through one `to_json` / `from_json` pair each. A new
metric is a new field of `RoundRecord`: the tables, the report and the JSON follow.

Stored JSON stays readable both ways: a field a record does not know is kept in `extra` and
written back unchanged, and a field an older run lacks takes its default. `RUN_FORMAT`
counts the changes of meaning; runs written before it existed are format 1.

The names of the files a worker and the store exchange live here too. One module per part:
`names` (files, format, case ids), `common` (the JSON rules), `case` (before a case runs),
`rounds` (what a worker measures), `serving` (load levels and servers), `outcome` (how a
case ended), `run` (the run's metadata).
"""

from __future__ import annotations

from bench.records.case import Case, Conformance, DatasetResolution
from bench.records.names import (
    BENCHMARK_FILE,
    BENCHMARKS_DIR,
    CASE_FILE,
    CASE_ID,
    CASES_DIR,
    DISTURBED_WAIT_SHARE,
    LEVELS_FILE,
    LOCK_FILE,
    LOG_FILE,
    MAX_CASE_ID_CHARS,
    OUTCOME_FILE,
    PROCESS_FILE,
    ROUNDS_FILE,
    RUN_FILE,
    RUN_FORMAT,
    SCENARIO_KEY,
    SERVER_FILE,
    TABLE_NAMES,
    WORK_DIR,
    case_id_problem,
)
from bench.records.outcome import CaseRecord, Outcome
from bench.records.rounds import CurvePoint, ProcessPlan, RoundRecord
from bench.records.run import BrokenPluginRecord, RunMeta
from bench.records.serving import LevelRecord, ServerRecord

__all__ = [
    "BENCHMARKS_DIR",
    "BENCHMARK_FILE",
    "CASES_DIR",
    "CASE_FILE",
    "CASE_ID",
    "DISTURBED_WAIT_SHARE",
    "LEVELS_FILE",
    "LOCK_FILE",
    "LOG_FILE",
    "MAX_CASE_ID_CHARS",
    "OUTCOME_FILE",
    "PROCESS_FILE",
    "ROUNDS_FILE",
    "RUN_FILE",
    "RUN_FORMAT",
    "SCENARIO_KEY",
    "SERVER_FILE",
    "TABLE_NAMES",
    "WORK_DIR",
    "BrokenPluginRecord",
    "Case",
    "CaseRecord",
    "Conformance",
    "CurvePoint",
    "DatasetResolution",
    "LevelRecord",
    "Outcome",
    "ProcessPlan",
    "RoundRecord",
    "RunMeta",
    "ServerRecord",
    "case_id_problem",
]
