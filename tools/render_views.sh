#!/usr/bin/env bash
# Render every view of the stored runs in RESULTS with the harness of CHECKOUT, into OUT:
# each run's HTML report, the first run's Markdown summary, the last run against the first
# (`--baseline`), the first two runs in one report, `bench show` of each run and
# `bench compare` of the first and the last. Two checkouts rendering the same runs give two
# folders that tools/compare_reports.py compares: a refactoring that is a move leaves the
# views identical. Versions before 0dbffd6 rewrote a run's CSV files on `bench show`: give
# them a copy of the runs.
#
#   tools/render_views.sh CHECKOUT RESULTS OUT
set -euo pipefail
checkout=$(cd "$1" && pwd); results=$(cd "$2" && pwd); out=$3
python=${PYTHON:-$checkout/.venv/bin/python}
mkdir -p "$out"; out=$(cd "$out" && pwd)
mapfile -t runs < <(cd "$results" && ls -d */ | tr -d / | sort)
((${#runs[@]} >= 2)) || { echo "need at least two runs in $results" >&2; exit 2; }
first=${runs[0]}; last=${runs[-1]}
cd "$checkout"
export PYTHONPATH=$checkout COLUMNS=200
views() { "$python" -m bench.cli "$@" --results-dir "$results"; }
for run in "${runs[@]}"; do
    views report "$run" --reports-dir "$out/$run" >/dev/null
    views show "$run" >"$out/show-$run.txt" 2>&1
done
views report "$first" --format md --reports-dir "$out/md" >/dev/null
views report "$last" --baseline "$first" --reports-dir "$out/baseline" >/dev/null
views report "$first" "${runs[1]}" --reports-dir "$out/multi" >/dev/null
views compare "$first" "$last" >"$out/compare.txt" 2>&1 || true
echo "$out"
