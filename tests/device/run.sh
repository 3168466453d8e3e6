#!/usr/bin/env bash
# The GPU check: run on a machine with an NVIDIA GPU, in a few minutes, from the repository
# root: `bash tests/device/run.sh [OUT]`. Everything it prints and writes goes to OUT
# (default: results/device-check): the logs, the two runs, the report.
#
#   1. build: `make setup` (torch 2.13.0 from PyPI is its CUDA build; tch-store links the
#      wheel's LibTorch, CUDA included), plus nvidia-ml-py for GPU utilisation;
#   2. what the machine has: nvidia-smi, torch's view of the device;
#   3. `bench check` on CUDA for every implementation that declares it (keras is skipped,
#      with the reason, where TensorFlow has no GPU build);
#   4. the GPU tests of the suite (tests/test_devices.py and the equivalence tests, which
#      add the cuda device where there is one);
#   5. a smoke run and a quick run of tch-mlp and tch-cnn on CUDA and on the CPU, and the
#      report of both.
#
# Each step's exit code is kept; the script exits non-zero if any step failed, after all ran.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:-results/device-check}
mkdir -p "$out"
out=$(cd "$out" && pwd)
bench=.venv/bin/bench
failed=()

step() {  # step NAME COMMAND...: run it, log it, remember a failure
    local name=$1
    shift
    echo "== $name: $*" | tee -a "$out/steps.log"
    local started=$SECONDS
    "$@" >"$out/$name.log" 2>&1
    local code=$?
    echo "   exit $code after $((SECONDS - started)) s" | tee -a "$out/steps.log"
    tail -n 25 "$out/$name.log"
    ((code == 0)) || failed+=("$name")
}

step setup make setup
step nvml .venv/bin/python -m pip install --quiet -c constraints/cpu.txt -e ".[all,dev,gpu]"
step gpu bash -c 'nvidia-smi; .venv/bin/python -c "
import torch
print(\"torch\", torch.__version__, \"CUDA\", torch.version.cuda, \"cuDNN\", torch.backends.cudnn.version())
print(\"available\", torch.cuda.is_available(), \"devices\", torch.cuda.device_count())
print(torch.cuda.get_device_name(0))"'
for impl in torch torch-store tch-store; do
    step "check-$impl" "$bench" check "$impl" --device cuda
done
# tensorflow-cpu sees no GPU: then `bench check` stops with exit 2 and says so, which is no
# failure of this check; any other exit code, or exit 2 for another reason, is.
step check-keras bash -c "said=\$('$bench' check keras --device cuda 2>&1); code=\$?
echo \"\$said\"; ((code == 0)) || { ((code == 2)) && grep -q 'sees no GPU' <<<\"\$said\"; }"
step tests .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_devices.py \
    tests/test_mlp_equivalence.py tests/test_cnn_equivalence.py tests/test_kmeans_equivalence.py
impls=torch,torch-store,tch-store,keras
step smoke "$bench" run --profile smoke -s tch-mlp,tch-cnn -i "$impls" --device cuda,cpu \
    --results-dir "$out/results"
step quick "$bench" run --profile quick -s tch-mlp,tch-cnn -i "$impls" --device cuda,cpu \
    --results-dir "$out/results"
step report "$bench" report --results-dir "$out/results" --reports-dir "$out"
step show bash -c "'$bench' show --results-dir '$out/results' \$(ls '$out/results' | tail -n 1)"

if ((${#failed[@]})); then
    echo "FAILED steps: ${failed[*]} (logs in $out)"
    exit 1
fi
echo "every step passed; logs, runs and the report are in $out"
