"""The names of a run's files, its format, the meaning of a disturbed round, the case id rule."""

from __future__ import annotations

import re

# 2: rounds carry their analytic FLOPs, the run stores its scenarios' definitions.
# 3: a case's rounds come from one worker process or more (`RoundRecord.process`), and its
#    record says why it stopped measuring.
RUN_FORMAT = 3
# A round is *disturbed* when its threads spent more than this share of the time they wanted
# a CPU waiting for one on a run queue (`RoundRecord.wait_share`): for one busy thread, a
# tenth of the round's wall time; about a round slowed by a tenth. `RoundRecord.disturbed`;
# how it was chosen: docs/measurement.md, "Contention".
DISTURBED_WAIT_SHARE = 0.10

# A run's folder.
RUN_FILE = "run.json"
CASES_DIR = "cases"
BENCHMARKS_DIR = "benchmarks"
WORK_DIR = "work"
TABLE_NAMES = ("rounds", "curves", "summary", "levels")
# Held (an advisory lock) by the one `bench run` writing the run; names the holder.
LOCK_FILE = "writer.lock"
# A case's work folder, shared by the runner and its worker.
CASE_FILE = "case.json"  # the Case, and its scenario's definition under SCENARIO_KEY
SCENARIO_KEY = "scenario_definition"
ROUNDS_FILE = "rounds.jsonl"  # one RoundRecord per line, appended as each round ends
BENCHMARK_FILE = "benchmark.json"  # pytest-benchmark's own JSON
OUTCOME_FILE = "outcome.json"  # the worker's last act
LOG_FILE = "worker.log"
PROCESS_FILE = "process.json"  # which of the case's processes the worker is (ProcessPlan)
# A serving case's: one LevelRecord per line as each load level ends, and its server's setup.
LEVELS_FILE = "levels.jsonl"
SERVER_FILE = "server.json"


# A case id names files and a folder (cases/<id>.json, benchmarks/<id>.json, work/<id>/), so
# it is made of characters that are safe in a file name, starts with a letter or digit (no
# "..", no hidden file) and stays well below the 255 bytes a file name may have, leaving room
# for the suffixes of atomic writes.
CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:=+-]*$")
MAX_CASE_ID_CHARS = 200


def case_id_problem(case_id: str) -> str | None:
    """Why `case_id` (or a part of one) cannot name a file, or None."""
    if len(case_id) > MAX_CASE_ID_CHARS:
        return f"is {len(case_id)} characters long, more than {MAX_CASE_ID_CHARS}"
    if not CASE_ID.match(case_id):
        return "may hold only letters, digits and . _ : = + -, and starts with a letter or digit"
    return None
