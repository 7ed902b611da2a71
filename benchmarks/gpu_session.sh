#!/usr/bin/env bash
# One short GPU session's measurements, most wanted first, each step under its own share of the time, every result
# written to OUT_DIR as it is measured (a step cut short keeps what it finished):
#   1. the machine: GPU, driver, library versions (env.txt);
#   2. the random models, drawn on the GPU (benchmarks/build_random_models.py);
#   3. orch's trainer against transformers' Trainer + peft and TRL's SFTTrainer (benchmarks/trainer_vs_baseline.py):
#      Llama-3.1-8B and Llama-3.2-1B, LoRA bf16 and QLoRA NF4, seq 2048, packed, 4 rows a step (tvb-*.json);
#   4. the session sweep (benchmarks/sweeps/gpu-session.yaml) through `orch bench` (sweep.jsonl).
# Run from the repository root on the GPU machine, after putting the packages it lacks on PYTHONPATH:
#   bash benchmarks/gpu_session.sh OUT_DIR [SECONDS]
# SECONDS (default 540; 20 to 86400) is the whole script's; a step that would start with under 20 s left is skipped.
# Environment: TVB_MODELS, TVB_SEQ, BUILD_MODELS and SWEEP replace step 2-4's models and sweep (empty skips the step);
# DONE_ROWS=benchmarks/results/<file>.jsonl skips the sweep points an earlier session measured.
# A CPU trial with tiny shapes: TVB_MODELS=orch/tiny-llama TVB_SEQ=256 BUILD_MODELS= \
#   SWEEP=benchmarks/sweeps/tiny-cpu.yaml bash benchmarks/gpu_session.sh /tmp/trial 300
set -u
usage="usage: bash benchmarks/gpu_session.sh OUT_DIR [SECONDS] (from the repository root)"
if [ $# -lt 1 ] || [ $# -gt 2 ] || [ -z "$1" ]; then
    echo "error: $usage" >&2
    exit 2
fi
out=$1
budget_s=${2:-540}
if ! [[ $budget_s =~ ^[0-9]+$ ]] || ((10#$budget_s < 20 || 10#$budget_s > 86400)); then
    printf "error: SECONDS must be a whole number from 20 to 86400, got %q; %s\n" "$budget_s" "$usage" >&2
    exit 2
fi
budget_s=$((10#$budget_s))
if [ ! -f benchmarks/gpu_session.sh ]; then
    echo "error: run it from the repository root; $usage" >&2
    exit 2
fi
if [ -e "$out" ] && [ ! -d "$out" ]; then
    printf "error: OUT_DIR %q is not a folder: give a folder to write the results in\n" "$out" >&2
    exit 2
fi
tvb_models=${TVB_MODELS-random:meta-llama/Llama-3.1-8B random:meta-llama/Llama-3.2-1B}
tvb_seq=${TVB_SEQ-2048}
build_models=${BUILD_MODELS-random:meta-llama/Llama-3.1-8B random:meta-llama/Llama-3.2-1B}
sweep=${SWEEP-benchmarks/sweeps/gpu-session.yaml}
done_rows=${DONE_ROWS-}  # a results file of an earlier session: its points are not run again, and are exported too
mkdir -p "$out" "${ORCH_HOME:-/tmp/orch-session-home}"
log="$out/log.txt"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 ORCH_HOME="${ORCH_HOME:-/tmp/orch-session-home}"
started=$SECONDS

# step NAME SECONDS COMMAND...: run COMMAND for at most SECONDS (and no longer than the script has left), its whole
# process group killed at the limit, its output appended to the log
step() {
    local name=$1 want=$2 left=$((budget_s - (SECONDS - started)))
    shift 2
    if ((left < 20)); then
        echo "== $name: skipped, $left s left" | tee -a "$log"
        return
    fi
    ((want > left)) && want=$left
    echo "== $name: up to $want s, from $(date -u +%H:%M:%S)" | tee -a "$log"
    local t0=$SECONDS
    timeout -k 10 "$want" "$@" >>"$log" 2>&1
    echo "== $name: exit $? after $((SECONDS - t0)) s" | tee -a "$log"
}

machine() {
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version,uuid --format=csv || echo "no nvidia-smi"
    python3 -c "import sys; print(sys.version)"
    python3 -m pip list 2>/dev/null | grep -iE "^(torch|transformers|peft|bitsandbytes|accelerate|trl|datasets|liger)"
}

machine >"$out/env.txt" 2>&1
cat "$out/env.txt" >>"$log"
[ -n "$build_models" ] && step build-models 120 python3 -m benchmarks.build_random_models $build_models
for model in $tvb_models; do
    for method in lora qlora; do
        short=$(basename "$model" | tr '[:upper:]' '[:lower:]')
        step "tvb $model $method" 200 python3 -m benchmarks.trainer_vs_baseline --model "$model" --method "$method" \
            --seq-len "$tvb_seq" --micro-batch 4 --steps 8 --warmup 3 --repeats 1 \
            --out "$out/tvb-$short-$method.json"
    done
done
if [ -n "$done_rows" ]; then
    python3 -c "import sys; from pathlib import Path; from orchestrator.bench.results import ResultStore, read_jsonl
store = ResultStore(Path(sys.argv[1]))
for row in read_jsonl([Path(sys.argv[2])]): store.save(row)" "$ORCH_HOME/bench.db" "$done_rows" >>"$log" 2>&1 ||
        echo "== DONE_ROWS $done_rows not read: every point runs (see the log)" | tee -a "$log"
fi
step sweep 600 python3 -c "from orchestrator.cli.entry import main; main()" bench "$sweep" \
    --db "$ORCH_HOME/bench.db" --out "$out/sweep.jsonl"
if [ ! -f "$out/sweep.jsonl" ] && [ -f "$ORCH_HOME/bench.db" ]; then  # cut short: export the points it finished
    python3 -c "import sys; from pathlib import Path; from orchestrator.bench.results import ResultStore, export
export(ResultStore(Path(sys.argv[1])).rows(), Path(sys.argv[2]))" "$ORCH_HOME/bench.db" "$out/sweep.jsonl" >>"$log" 2>&1
fi
echo "== done in $((SECONDS - started)) s" | tee -a "$log"
