#!/usr/bin/env bash
# pdyolo's training step vs PyTorch CPU's, in the same run: rounds of bench_train_step and
# bench/torch_train_step.py in turn (the machines are shared and noisy, so only same-run ratios
# mean anything), then PyTorch's step time over ours (= our images/s over PyTorch's) per round,
# by the median step and by the best step of each program, and the medians of those ratios.
#   bench/torch_compare.sh BENCH_TRAIN_STEP_BINARY [ROUNDS] [-- ARGS for both: --img-size, --batch-size, --cfg]
# PyTorch is Debian's python3-torch (reference only, never a dependency). Environment: THREADS
# (2), STEPS per program and round (6), BASELINE (another bench_train_step binary, e.g. an earlier
# build's, timed in the same rounds).
set -euo pipefail
usage="usage: torch_compare.sh BENCH_TRAIN_STEP_BINARY [ROUNDS] [-- ARGS]"
ours_bin=${1:?$usage}
shift
rounds=5
if [[ $# -gt 0 && $1 != -- ]]; then rounds=$1; shift; fi
[[ ${1:-} == -- ]] && shift
here=$(cd "$(dirname "$0")/.." && pwd)
threads=${THREADS:-2} steps=${STEPS:-6}
/usr/bin/python3 -c "import torch, yaml" 2>/dev/null || { echo "torch_compare: needs python3-torch and python3-yaml (apt-get install python3-torch python3-yaml)" >&2; exit 2; }
field() { sed -n "s/.*\"$1\": *\([0-9.]*\).*/\1/p"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
baseline=${BASELINE:-}
by_median=() by_best=() base_by_median=()
echo "training step, $threads threads, $steps steps per program and round (ms: median step / best step)"
for ((r = 1; r <= rounds; r++)); do
  ours=$(cd "$here" && OMP_NUM_THREADS=$threads "$ours_bin" --steps "$steps" "$@" | tail -1)
  torch=$(cd "$here" && OMP_NUM_THREADS=$threads /usr/bin/python3 bench/torch_train_step.py --steps "$steps" --threads "$threads" "$@" | tail -1)
  m=$(awk -v a="$(field step_ms <<<"$torch")" -v b="$(field step_ms <<<"$ours")" 'BEGIN { printf "%.3f", a / b }')
  b=$(awk -v a="$(field best_step_ms <<<"$torch")" -v b="$(field best_step_ms <<<"$ours")" 'BEGIN { printf "%.3f", a / b }')
  by_median+=("$m") by_best+=("$b")
  line="round $r: pdyolo $(field step_ms <<<"$ours") / $(field best_step_ms <<<"$ours") | PyTorch $(field step_ms <<<"$torch") / $(field best_step_ms <<<"$torch") | PyTorch/pdyolo $m (median steps), $b (best steps)"
  if [[ -n $baseline ]]; then
    base=$(cd "$here" && OMP_NUM_THREADS=$threads "$baseline" --steps "$steps" "$@" | tail -1)
    bm=$(awk -v a="$(field step_ms <<<"$torch")" -v b="$(field step_ms <<<"$base")" 'BEGIN { printf "%.3f", a / b }')
    base_by_median+=("$bm")
    line+=" | baseline $(field step_ms <<<"$base"), PyTorch/baseline $bm"
  fi
  echo "$line"
done
echo "median over $rounds rounds: PyTorch/pdyolo = $(printf '%s\n' "${by_median[@]}" | median) (median steps), $(printf '%s\n' "${by_best[@]}" | median) (best steps)"
[[ -n $baseline ]] && echo "baseline: PyTorch/baseline = $(printf '%s\n' "${base_by_median[@]}" | median) (median steps)"
exit 0
