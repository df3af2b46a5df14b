#!/usr/bin/env bash
# Crash safety of a real training run: `pdyolo train` is killed with SIGKILL once while it saves a
# checkpoint and once in the middle of an epoch; each time the last checkpoint must load, and
# --resume must end at exactly the weights of the same run left alone.
#   kill_resume.sh PDYOLO SOURCE_DIR OUT_DIR
set -euo pipefail
pdyolo=$1 src=$2 out=$3
args=(train --cfg "$src/cfg/training/yolov7-tiny.yaml" --hyp "$src/cfg/hyp/hyp.scratch.tiny.yaml" --data "$src/data/sample"
      --split train --epochs 6 --batch-size 2 --img-size 96 --workers 2 --notest --no-progress --seed 3)
rm -rf "$out"
mkdir -p "$out"
run=$out/killed
epochs_done() { [[ -f $run/results.csv ]] && echo $(($(wc -l <"$run/results.csv") - 1)) || echo 0; }
alive() { kill -0 "$1" 2>/dev/null; }

echo "uninterrupted run:"
"$pdyolo" "${args[@]}" --out "$out/straight" >"$out/straight.log"

# 1. SIGKILL while the checkpoint of epoch 2 is being written (its temporary file exists).
"$pdyolo" "${args[@]}" --out "$run" >"$out/run1.log" 2>&1 &
pid=$!
while (($(epochs_done) < 1)); do alive $pid || { echo "run ended early"; exit 1; }; sleep 0.01; done
until compgen -G "$run/last.safetensors.tmp.*" >/dev/null; do alive $pid || { echo "run ended early"; exit 1; }; sleep 0.001; done
kill -9 $pid
wait $pid 2>/dev/null || true
echo "killed mid-save after $(epochs_done) epoch(s); left behind: $(cd "$run" && ls | tr '\n' ' ')"
"$pdyolo" info --weights "$run/last.safetensors"

# 2. Resumed, then SIGKILL half an epoch after the next checkpoint landed (no save under way).
start=$(epochs_done)
"$pdyolo" "${args[@]}" --out "$run" --resume >"$out/run2.log" 2>&1 &
pid=$!
while (($(epochs_done) <= start)); do alive $pid || { echo "run ended early"; exit 1; }; sleep 0.01; done
t0=$(date +%s%N)
while (($(epochs_done) <= start + 1)); do alive $pid || { echo "run ended early"; exit 1; }; sleep 0.01; done
epoch_ns=$(($(date +%s%N) - t0))
sleep "$(awk -v ns=$((epoch_ns / 2)) 'BEGIN { print ns / 1e9 }')"
if compgen -G "$run/last.safetensors.tmp.*" >/dev/null; then echo "a save was under way; the kill is not mid-epoch"; exit 1; fi
kill -9 $pid
wait $pid 2>/dev/null || true
echo "killed mid-epoch after $(epochs_done) epoch(s) (an epoch takes $((epoch_ns / 1000000)) ms)"
"$pdyolo" info --weights "$run/last.safetensors"

# 3. Resumed to the end: the weights equal the uninterrupted run's bit for bit.
"$pdyolo" "${args[@]}" --out "$run" --resume >"$out/run3.log" 2>&1
for r in straight killed; do "$pdyolo" convert --weights "$out/$r/last.safetensors" --out "$out/$r.safetensors" >/dev/null; done
cmp "$out/straight.safetensors" "$out/killed.safetensors"
if compgen -G "$run/*.tmp.*" >/dev/null; then echo "the killed writer's temporary file outlived the run"; exit 1; fi
echo "resumed twice after SIGKILL: final weights identical to the uninterrupted run's"
