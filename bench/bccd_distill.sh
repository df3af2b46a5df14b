#!/usr/bin/env bash
# Knowledge distillation on held-out data (issue 20): BCCD (../shared/data/bccd-voc), 256 px.
#   bench/bccd_distill.sh [STEP...]     STEP: teacher teacher-s2 plain kl bce mse feature cwd plain-s2 BEST-s2
#   (default: teacher plain kl bce mse feature cwd)
# The teacher (yolov7-tiny) trains on `train`, its epoch chosen on `val` (best.safetensors: the
# reference's fitness on val); each student (cfg/training/yolov7-tiny-half.yaml) trains for the same
# budget and seed, plain or with one KD mode, its epoch also chosen on `val`; every model is then
# evaluated once on `test`. Each step resumes when rerun (--resume) and skips when it has finished.
# Writes bench/runs/bccd/<step>/ and the table bench/runs/bccd/results.md. Threads: OMP_NUM_THREADS.
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/data/bccd-voc
out=bench/runs/bccd
epochs=${EPOCHS:-100}
size=256
common=(--data "$data" --hyp bench/hyp.bccd.yaml --epochs "$epochs" --batch-size 16 --img-size $size --workers 1 --cache --no-progress)
mkdir -p "$out"
steps=("$@")
((${#steps[@]})) || steps=(teacher plain kl bce mse feature cwd)

train_step() {  # train_step NAME SEED ARGS...
  local name=$1 seed=$2; shift 2
  local dir=$out/$name
  if [[ -f $dir/test.json ]]; then echo "$name: done"; return; fi
  local resume=()
  [[ -f $dir/last.safetensors ]] && resume=(--resume)
  local start=$SECONDS
  build/pdyolo train "${common[@]}" --seed "$seed" --out "$dir" "$@" "${resume[@]}" >"$dir.log" 2>&1 || { tail -5 "$dir.log"; exit 1; }
  echo "$((SECONDS - start))" >>"$dir/seconds"
  build/pdyolo eval --weights "$dir/best.safetensors" --data "$data" --split test --img-size $size --no-progress --json \
    --out "$dir/test" | tail -1 >"$dir/test.json"
  echo "$name: $(cat "$dir/test.json")"
}

for step in "${steps[@]}"; do
  case "$step" in
    teacher) train_step teacher 0 --cfg cfg/training/yolov7-tiny.yaml ;;
    teacher-s2) train_step teacher-s2 1 --cfg cfg/training/yolov7-tiny.yaml ;;
    plain) train_step plain 0 --cfg cfg/training/yolov7-tiny-half.yaml ;;
    plain-s2) train_step plain-s2 1 --cfg cfg/training/yolov7-tiny-half.yaml ;;
    kl|bce|mse|feature|cwd) train_step "$step" 0 --cfg cfg/training/yolov7-tiny-half.yaml --teacher "$out/teacher/best.safetensors" --kd "$step" ;;
    *-s2) train_step "$step" 1 --cfg cfg/training/yolov7-tiny-half.yaml --teacher "$out/teacher/best.safetensors" --kd "${step%-s2}" ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
{
  echo "| model | mAP@0.5 (test) | mAP@0.5:0.95 (test) | training time (s) |"
  echo "|---|---|---|---|"
  for dir in "$out"/*/; do
    name=$(basename "$dir")
    [[ -f $dir/test.json ]] || continue
    m50=$(grep -o '"map50":[0-9.]*' "$dir/test.json" | cut -d: -f2)
    m=$(grep -o '"map50_95":[0-9.]*' "$dir/test.json" | cut -d: -f2)
    echo "| $name | $m50 | $m | $(awk '{ s += $1 } END { print s }' "$dir/seconds") |"
  done
} >"$out/results.md"
cat "$out/results.md"
