#!/usr/bin/env bash
# Structured pruning on held-out data (issue 21): BCCD (../shared/data/bccd-voc), 256 px.
#   bench/bccd_prune.sh [STEP...]
#   STEP: sparse               network-slimming fine-tune of the teacher (--sparsity), for `bn`
#         prune-C              prune the teacher (bn: the sparse model) with criterion C to half its parameters
#         kd-C, plain-C        fine-tune prune-C's model with KD from the unpruned teacher, or without
#         table                bench/runs/bccd_prune/results.md from what has finished
#   C: random l1 bn taylor kd-taylor. Default: every step, in order.
# The teacher is issue 20's yolov7-tiny (bench/runs/bccd/teacher/best.safetensors). Every criterion
# prunes to the same widths (local ranking, --target-params 0.5, multiples of 8), so only *which*
# channels go differs. kd-taylor differentiates the distillation loss against a second yolov7-tiny
# (bench/bccd_distill.sh teacher-s2: same recipe, seed 1): against the model being pruned itself that
# loss is at its minimum and has no gradient. Fine-tuning: bench/hyp.bccd.finetune.yaml, the same epochs and seed for all,
# the checkpoint chosen on `val`; each model is evaluated once on `test`. Steps resume when rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/data/bccd-voc
teacher=bench/runs/bccd/teacher/best.safetensors
importance_teacher=bench/runs/bccd/teacher-s2/best.safetensors
out=bench/runs/bccd_prune
epochs=${EPOCHS:-40}
sparsity=${SPARSITY:-0.01}
size=256
train_args=(--data "$data" --hyp bench/hyp.bccd.finetune.yaml --epochs "$epochs" --batch-size 16 --img-size $size
  --workers 1 --cache --no-progress --seed 0)
criteria=(random l1 bn taylor kd-taylor)
mkdir -p "$out"

evaluate() {  # evaluate MODEL SPLIT OUT.json
  build/pdyolo eval --weights "$1" --data "$data" --split "$2" --img-size $size --no-progress --json | tail -1 >"$3"
}

train_step() {  # train_step NAME ARGS...
  local name=$1; shift
  local dir=$out/$name
  if [[ -f $dir/test.json ]]; then echo "$name: done"; return; fi
  local resume=()
  [[ -f $dir/last.safetensors ]] && resume=(--resume)
  local start=$SECONDS
  build/pdyolo train "${train_args[@]}" --out "$dir" "$@" "${resume[@]}" >"$dir.log" 2>&1 || { tail -5 "$dir.log"; exit 1; }
  echo "$((SECONDS - start))" >>"$dir/seconds"
  evaluate "$dir/best.safetensors" test "$dir/test.json"
  echo "$name: $(cat "$dir/test.json")"
}

prune_step() {  # prune_step C
  local c=$1 dir=$out/prune-$1 source=$teacher
  if [[ -f $dir/test.json ]]; then echo "prune-$c: done"; return; fi
  if [[ $c == bn ]]; then
    source=$out/sparse/best.safetensors
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

metric() { grep -o "\"$2\":[0-9.e-]*" "$1" | cut -d: -f2; }  # metric FILE.json KEY

table() {
  {
    echo "| model | mAP@0.5 (test) | mAP@0.5:0.95 (test) | mAP@0.5 (val) | seconds |"
    echo "|---|---|---|---|---|"
    for dir in "$out"/*/; do
      local name; name=$(basename "$dir")
      [[ -f $dir/test.json ]] || continue
      local val=""
      [[ -f $dir/val.json ]] && val=$(metric "$dir/val.json" map50)
      [[ -z $val && -f $dir/results.csv ]] && val=best-epoch
      echo "| $name | $(metric "$dir/test.json" map50) | $(metric "$dir/test.json" map50_95) | $val | $(awk '{ s += $1 } END { print s }' "$dir/seconds") |"
    done
  } >"$out/results.md"
  cat "$out/results.md"
}

steps=("$@")
if ((${#steps[@]} == 0)); then
  steps=(sparse)
  for c in "${criteria[@]}"; do steps+=("prune-$c"); done
  for c in "${criteria[@]}"; do steps+=("kd-$c"); done
  steps+=(table)
fi
for step in "${steps[@]}"; do
  case "$step" in
    sparse) train_step sparse --weights "$teacher" --sparsity "$sparsity" ;;
    prune-*) prune_step "${step#prune-}" ;;
    kd-*) train_step "$step" --weights "$out/prune-${step#kd-}/pruned.safetensors" --teacher "$teacher" --kd kl ;;
    plain-*) train_step "$step" --weights "$out/prune-${step#plain-}/pruned.safetensors" ;;
    table) table ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
