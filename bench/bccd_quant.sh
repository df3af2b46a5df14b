#!/usr/bin/env bash
# int8 quantization on held-out data (issue 22): BCCD (../shared/data/bccd-voc), 256 px, the
# distillation teacher (bench/bccd_distill.sh teacher: yolov7-tiny trained on `train`).
#   bench/bccd_quant.sh [STEP...]    STEP: ptq mixed detect-fp32 qat qat-kd (default: all, in this order)
#   ptq         each observer: calibrated on all of `val`, evaluated on `val` and `test`. The observer
#               the later steps use is the one with the best integer fitness on `val`
#               (0.1·mAP@.5 + 0.9·mAP@.5:.95, the trainer's) — chosen there, never on `test`.
#   mixed       that observer, --sensitivity on `val` and --keep-fp32 $KEEP (default 3)
#   detect-fp32 that observer with the detect head's three convs in float
#   qat         quantization-aware training from that observer's calibration: $QAT_EPOCHS epochs
#               (default 10) of bench/hyp.bccd.qat.yaml on `train`, epoch chosen on `val` (fake-quant)
#   qat-kd      the same, distilled from the float model (--kd kl, the best mode of bench/bccd_distill.sh)
# Each step skips when its log is complete; QAT resumes when rerun. Writes bench/runs/bccd_quant/
# (logs, sensitivity.csv/png, QAT results.csv and plots; the int8 files are not committed) and the
# table bench/runs/bccd_quant/results.md. Threads: OMP_NUM_THREADS.
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/data/bccd-voc
teacher=bench/runs/bccd/teacher/best.safetensors
out=bench/runs/bccd_quant
size=256
keep=${KEEP:-3}
epochs=${QAT_EPOCHS:-10}
[[ -f $teacher ]] || { echo "no $teacher: run bench/bccd_distill.sh teacher first" >&2; exit 1; }
mkdir -p "$out"
steps=("$@")
((${#steps[@]})) || steps=(ptq mixed detect-fp32 qat qat-kd)
common=(--data "$data" --img-size $size --no-progress)

# Row $3 (float, fake-quant, integer; default integer) of split $2 in log $1: "mAP@.5 mAP@.5:.95".
integer_row() {
  awk -v want="'$2'" -v row="${3:-integer}" '$0 ~ "on [0-9]+ images of " want { on = 1; next } /images of/ { on = 0 }
                                               on && $1 == row { print $2, $3 }' "$1"
}
done_log() { [[ -f $1 ]] && grep -q "^integer" "$1" && [[ $(grep -c "^integer" "$1") -ge $2 ]]; }

quantize() {  # quantize NAME ARGS...
  local name=$1; shift
  if done_log "$out/$name.log" 2; then echo "$name: done"; return; fi
  build/pdyolo quantize --weights "$teacher" "${common[@]}" --split val --calib-images 1000 --eval-split val,test \
    --out "$out/$name.safetensors" "$@" >"$out/$name.log" 2>&1 || { tail -5 "$out/$name.log"; exit 1; }
  echo "$name: val $(integer_row "$out/$name.log" val), test $(integer_row "$out/$name.log" test)"
}

best_observer() {
  for o in minmax ema percentile kl mse; do
    [[ -f $out/ptq_$o.log ]] || continue
    echo "$o $(integer_row "$out/ptq_$o.log" val)"
  done | awk '{ f = 0.1 * $2 + 0.9 * $3; if (f > best) { best = f; name = $1 } } END { print name }'
}

qat() {  # qat NAME ARGS...
  local name=$1; shift
  if done_log "$out/$name.log" 1; then echo "$name: done"; return; fi
  local resume=()
  [[ -f $out/${name}_qat/last.safetensors ]] && resume=(--resume)
  build/pdyolo qat --weights "$teacher" "${common[@]}" --hyp bench/hyp.bccd.qat.yaml --epochs "$epochs" --batch-size 16 --workers 1 \
    --cache --calib-split val --calib-images 1000 --observer "$(best_observer)" --eval-split test --out "$out/$name.safetensors" \
    "$@" "${resume[@]}" >>"$out/$name.log" 2>&1 || { tail -5 "$out/$name.log"; exit 1; }
  echo "$name: test $(integer_row "$out/$name.log" test)"
}

for step in "${steps[@]}"; do
  case "$step" in
    ptq) for o in minmax ema percentile kl mse; do quantize "ptq_$o" --observer "$o"; done
         echo "observer chosen on val: $(best_observer)" ;;
    mixed) quantize mixed --observer "$(best_observer)" --sensitivity --keep-fp32 "$keep" --report "$out/sensitivity" ;;
    detect-fp32) quantize detect_fp32 --observer "$(best_observer)" --detect-fp32 ;;
    qat) qat qat ;;
    qat-kd) qat qat_kd --teacher float --kd kl ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
{
  echo "| model | observer | mAP@0.5 val | mAP@0.5:0.95 val | mAP@0.5 test | mAP@0.5:0.95 test |"
  echo "|---|---|---|---|---|---|"
  if [[ -f $out/ptq_minmax.log ]]; then
    read -r v50 v <<<"$(integer_row "$out/ptq_minmax.log" val float)"
    read -r t50 t <<<"$(integer_row "$out/ptq_minmax.log" test float)"
    echo "| float (fused) | — | $v50 | $v | $t50 | $t |"
  fi
  for log in "$out"/*.log; do
    name=$(basename "$log" .log)
    grep -q "^integer" "$log" || continue
    observer=$(grep -o "([a-z]* observer)\|calibrated on [0-9]* images of 'val' ([a-z]*)" "$log" | head -1 | grep -o "([a-z]*" | tr -d '(')
    read -r v50 v <<<"$(integer_row "$log" val)"
    read -r t50 t <<<"$(integer_row "$log" test)"
    echo "| $name | $observer | ${v50:--} | ${v:--} | $t50 | $t |"
  done
} >"$out/results.md"
cat "$out/results.md"
