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
source bench/bccd_common.sh
out=bench/runs/bccd
epochs=${EPOCHS:-100}
train_args=(--data "$data" --hyp bench/hyp.bccd.yaml --epochs "$epochs" --batch-size 16 --img-size $size --workers 1 --cache --no-progress)
mkdir -p "$out"
steps=("$@")
((${#steps[@]})) || steps=(teacher plain kl bce mse feature cwd)

for step in "${steps[@]}"; do
  case "$step" in
    teacher) train_step teacher --seed 0 --cfg cfg/training/yolov7-tiny.yaml ;;
    teacher-s2) train_step teacher-s2 --seed 1 --cfg cfg/training/yolov7-tiny.yaml ;;
    plain) train_step plain --seed 0 --cfg cfg/training/yolov7-tiny-half.yaml ;;
    plain-s2) train_step plain-s2 --seed 1 --cfg cfg/training/yolov7-tiny-half.yaml ;;
    kl|bce|mse|feature|cwd) train_step "$step" --seed 0 --cfg cfg/training/yolov7-tiny-half.yaml --teacher "$out/teacher/best.safetensors" --kd "$step" ;;
    *-s2) train_step "$step" --seed 1 --cfg cfg/training/yolov7-tiny-half.yaml --teacher "$out/teacher/best.safetensors" --kd "${step%-s2}" ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
table
