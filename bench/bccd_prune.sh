#!/usr/bin/env bash
# Structured pruning on held-out data (issue 21): BCCD (../shared/data/bccd-voc), 256 px.
#   bench/bccd_prune.sh [STEP...]
#   STEP: sparse               network-slimming fine-tune of the teacher (--sparsity), for `bn`
#         prune-C              prune the teacher (bn: the sparse run's last model) with criterion C to half its parameters
#         kd-C, plain-C        fine-tune prune-C's model with KD from the unpruned teacher, or without
#         plain-best           plain-C for the criterion whose KD fine-tune scored best on `val`
#         int8                 quantize the unpruned teacher and kd-BEST's model (mse observer, all of `val`)
#         latency              rounds of `pdyolo bench` (640 px, THREADS=2) over those four models, interleaved
#         table                bench/runs/bccd_prune/results.md from what has finished
#   C: random l1 bn taylor kd-taylor. Default: sparse, prune-C, kd-C, plain-best, int8, latency, table.
# The teacher is issue 20's yolov7-tiny (bench/runs/bccd/teacher/best.safetensors). Every criterion
# prunes to the same widths (local ranking, --target-params 0.5, multiples of 8), so only *which*
# channels go differs. kd-taylor differentiates the distillation loss against a second yolov7-tiny
# (bench/bccd_distill.sh teacher-s2: same recipe, seed 1): against the model being pruned itself that
# loss is at its minimum and has no gradient. Fine-tuning: bench/hyp.bccd.finetune.yaml, the same epochs and seed for all,
# the checkpoint chosen on `val`; each model is evaluated once on `test`. Steps resume when rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/bccd_common.sh
teacher=bench/runs/bccd/teacher/best.safetensors
importance_teacher=bench/runs/bccd/teacher-s2/best.safetensors
out=bench/runs/bccd_prune
epochs=${EPOCHS:-40}
sparsity=${SPARSITY:-0.1}
train_args=(--data "$data" --hyp bench/hyp.bccd.finetune.yaml --epochs "$epochs" --batch-size 16 --img-size $size
  --workers 1 --cache --no-progress --seed 0)
criteria=(random l1 bn taylor kd-taylor)
mkdir -p "$out"

prune_step() {  # prune_step C
  local c=$1 dir=$out/prune-$1 source=$teacher
  if [[ -f $dir/test.json ]]; then echo "prune-$c: done"; return; fi
  if [[ $c == bn ]]; then
    # The end of the sparsity run, not its best epoch: fitness on val falls as S·sign(γ) shrinks the
    # batch norms, so the best epoch is the first, before sparsity has done anything.
    source=$out/sparse/last.safetensors
    [[ -f $source ]] || { echo "prune-bn needs the sparse step first" >&2; exit 1; }
  fi
  local calib=()
  [[ $c == taylor || $c == kd-taylor ]] && calib=(--data "$data" --split train --calib-batches 16 --batch-size 8)
  [[ $c == kd-taylor ]] && calib+=(--teacher "$importance_teacher" --kd kl)
  mkdir -p "$dir"
  local start=$SECONDS
  build/pdyolo prune --weights "$source" --importance "$c" --target-params 0.5 --img-size $size --latency-runs 0 \
    --no-progress "${calib[@]}" --report "$dir/report.json" --out "$dir/pruned.safetensors" >"$dir.log" 2>&1 \
    || { tail -5 "$dir.log"; exit 1; }
  echo "$((SECONDS - start))" >"$dir/seconds"
  evaluate "$dir/pruned.safetensors" val "$dir/val.json"
  evaluate "$dir/pruned.safetensors" test "$dir/test.json"
  echo "prune-$c: $(tail -1 "$dir.log"); before fine-tuning: $(cat "$dir/test.json")"
}

# The criterion whose KD fine-tune reached the highest val fitness (0.1·mAP@.5 + 0.9·mAP@.5:.95, the
# quantity that chose each run's checkpoint); never chosen on test.
best_criterion() {
  local c best="" best_fitness=-1
  for c in "${criteria[@]}"; do
    [[ -f $out/kd-$c/test.json ]] || continue
    local f; f=$(chosen_epoch "$out/kd-$c/results.csv")
    if awk -v a="$f" -v b="$best_fitness" 'BEGIN { exit !(a > b) }'; then best=$c best_fitness=$f; fi
  done
  [[ -n $best ]] || { echo "no KD fine-tune has finished" >&2; exit 1; }
  echo "$best"
}

quantize_step() {  # quantize_step NAME MODEL
  local dir=$out/$1
  if [[ -f $dir/test.json ]]; then echo "$1: done"; return; fi
  mkdir -p "$dir"
  build/pdyolo quantize --weights "$2" --data "$data" --split val --calib-images 1000 --observer mse --eval-split test \
    --img-size $size --no-progress --out "$dir/int8.safetensors" >"$dir.log" 2>&1 || { tail -5 "$dir.log"; exit 1; }
  evaluate "$dir/int8.safetensors" test "$dir/test.json"
  echo "$1: $(cat "$dir/test.json")"
}

# P50 latency of each model in ROUNDS interleaved rounds (the machine is shared and noisy: only
# same-round ratios mean much), and the unpruned/pruned speed-up per round and its median.
latency_step() {
  local best; best=$(best_criterion)
  local names=(fp32 pruned-fp32 int8 pruned-int8)
  local models=("$teacher" "$out/kd-$best/best.safetensors" "$out/int8-teacher/int8.safetensors" "$out/int8-$best/int8.safetensors")
  local rounds=${ROUNDS:-5} threads=${THREADS:-2} r i
  {
    echo "P50 ms at 640 px, $threads threads, ${RUNS:-30} runs per model and round; pruned: kd-$best ($(date -u +%F), $(nproc) CPUs)"
    for ((r = 1; r <= rounds; r++)); do
      local p50=()
      for i in "${!models[@]}"; do
        p50+=("$(build/pdyolo bench --weights "${models[$i]}" --img-size 640 --threads "$threads" --runs "${RUNS:-30}" --json | tail -1 \
          | sed -n 's/.*"p50_ms": *\([0-9.]*\).*/\1/p')")
      done
      echo "round $r: $(for i in "${!names[@]}"; do printf '%s %s  ' "${names[$i]}" "${p50[$i]}"; done)speed-up fp32 $(awk -v a="${p50[0]}" -v b="${p50[1]}" 'BEGIN { printf "%.3f", a / b }'), int8 $(awk -v a="${p50[2]}" -v b="${p50[3]}" 'BEGIN { printf "%.3f", a / b }')"
    done
  } | tee "$out/latency.txt"
}

steps=("$@")
if ((${#steps[@]} == 0)); then
  steps=(sparse)
  for c in "${criteria[@]}"; do steps+=("prune-$c"); done
  for c in "${criteria[@]}"; do steps+=("kd-$c"); done
  steps+=(plain-best int8 latency table)
fi
for step in "${steps[@]}"; do
  case "$step" in
    sparse) train_step sparse --weights "$teacher" --sparsity "$sparsity" ;;
    prune-*) prune_step "${step#prune-}" ;;
    kd-*) train_step "$step" --weights "$out/prune-${step#kd-}/pruned.safetensors" --teacher "$teacher" --kd kl ;;
    plain-best) best=$(best_criterion); train_step "plain-$best" --weights "$out/prune-$best/pruned.safetensors" ;;
    int8) best=$(best_criterion); quantize_step int8-teacher "$teacher"; quantize_step "int8-$best" "$out/kd-$best/best.safetensors" ;;
    latency) latency_step ;;
    plain-*) train_step "$step" --weights "$out/prune-${step#plain-}/pruned.safetensors" ;;
    table) table ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
