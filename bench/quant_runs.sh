#!/usr/bin/env bash
# int8 quantization evidence (issue 22): one trained float model through every PTQ observer, mixed
# precision and quantization-aware training, each int8 model evaluated on the integer runtime.
#   bench/quant_runs.sh [STEP...]    STEP: ptq mixed detect-fp32 qat qat-kd (default: all, in this order)
#   ptq         each observer: calibrated on all of $CALIB_SPLIT, evaluated on every split of $EVAL_SPLITS.
#               The observer the later steps use is the one with the best integer fitness on
#               $CALIB_SPLIT (0.1·mAP@.5 + 0.9·mAP@.5:.95, the trainer's) — never chosen on a test split.
#   mixed       that observer, --sensitivity on $CALIB_SPLIT and --keep-fp32 $KEEP (default 3)
#   detect-fp32 that observer with the detect head's three convs in float
#   qat         quantization-aware training from that observer's calibration: $QAT_EPOCHS epochs
#               (default 10) of $QAT_HYP on $TRAIN_SPLIT (default: train, the epoch chosen on val)
#   qat-kd      the same, distilled from the float model (--kd kl, the best mode of bench/bccd_distill.sh)
#   float-ft    the control: the float model fine-tuned with the same recipe ($QAT_HYP, $QAT_EPOCHS,
#               $TRAIN_SPLIT), evaluated on its training split each epoch — what the recipe does alone
# QAT_TAG (default empty) is appended to the names of qat, qat-kd and float-ft (another recipe's runs).
# The default is BCCD (../shared/data/bccd-voc, 256 px, the distillation teacher of
# bench/bccd_distill.sh, calibrated on val, reported on val and the held-out test). COCO128, the
# parity fixture (not held out: its checkpoint was trained on these images):
#   DATA=../shared/data/coco128-voc WEIGHTS=../shared/fixtures/yolov7-tiny-coco128/yolov7-tiny-coco128.pt \
#   OUT=bench/runs/coco128_quant SIZE=320 CALIB_SPLIT=train2017 EVAL_SPLITS=train2017 TRAIN_SPLIT=train2017 \
#   bench/quant_runs.sh
# Each step skips when its log is complete; QAT resumes when rerun. Writes $OUT (logs, sensitivity
# table and plot, QAT results.csv and plots; the int8 files are not committed) and $OUT/results.md.
# Threads: OMP_NUM_THREADS.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DATA:-../shared/data/bccd-voc}
weights=${WEIGHTS:-bench/runs/bccd/teacher/best.safetensors}
out=${OUT:-bench/runs/bccd_quant}
size=${SIZE:-256}
calib_split=${CALIB_SPLIT:-val}
eval_splits=${EVAL_SPLITS:-val,test}
train_split=${TRAIN_SPLIT:-}
qat_hyp=${QAT_HYP:-bench/hyp.qat.yaml}
keep=${KEEP:-3}
epochs=${QAT_EPOCHS:-10}
tag=${QAT_TAG:-}
[[ -f $weights ]] || { echo "no $weights (the BCCD teacher: bench/bccd_distill.sh teacher)" >&2; exit 1; }
mkdir -p "$out"
steps=("$@")
((${#steps[@]})) || steps=(ptq mixed detect-fp32 qat qat-kd)
common=(--data "$data" --img-size "$size" --no-progress)
IFS=, read -r -a splits <<<"$eval_splits"

# Row $3 (float, fake-quant, integer; default integer) of split $2 in log $1: "mAP@.5 mAP@.5:.95".
row_of() {
  awk -v want="'$2'" -v row="${3:-integer}" '$0 ~ "on [0-9]+ images of " want { on = 1; next } /images of/ { on = 0 }
                                               on && $1 == row { print $2, $3 }' "$1"
}
complete() { [[ -f $1 ]] && [[ $(grep -c "^integer" "$1") -ge $2 ]]; }

quantize() {  # quantize NAME ARGS...
  local name=$1; shift
  if complete "$out/$name.log" ${#splits[@]}; then echo "$name: done"; return; fi
  build/pdyolo quantize --weights "$weights" "${common[@]}" --split "$calib_split" --calib-images 1000 --eval-split "$eval_splits" \
    --out "$out/$name.safetensors" "$@" >"$out/$name.log" 2>&1 || { tail -5 "$out/$name.log"; exit 1; }
  echo "$name: $(for s in "${splits[@]}"; do echo -n "$s $(row_of "$out/$name.log" "$s")  "; done)"
}

best_observer() {
  for o in minmax ema percentile kl mse; do
    [[ -f $out/ptq_$o.log ]] || continue
    echo "$o $(row_of "$out/ptq_$o.log" "$calib_split")"
  done | awk 'NF == 3 { f = 0.1 * $2 + 0.9 * $3; if (f > best) { best = f; name = $1 } } END { print name }'
}

qat() {  # qat NAME ARGS...
  local name=$1; shift
  if complete "$out/$name.log" ${#splits[@]}; then echo "$name: done"; return; fi
  local extra=()
  [[ -f $out/${name}_qat/last.safetensors ]] && extra+=(--resume)
  [[ -n $train_split ]] && extra+=(--split "$train_split")
  build/pdyolo qat --weights "$weights" "${common[@]}" --hyp "$qat_hyp" --epochs "$epochs" --batch-size 16 --workers 1 --cache \
    --calib-split "$calib_split" --calib-images 1000 --observer "$(best_observer)" --eval-split "$eval_splits" \
    --out "$out/$name.safetensors" "$@" "${extra[@]}" >>"$out/$name.log" 2>&1 || { tail -5 "$out/$name.log"; exit 1; }
  echo "$name: $(for s in "${splits[@]}"; do echo -n "$s $(row_of "$out/$name.log" "$s")  "; done)"
}

for step in "${steps[@]}"; do
  case "$step" in
    ptq) for o in minmax ema percentile kl mse; do quantize "ptq_$o" --observer "$o"; done
         echo "observer chosen on $calib_split: $(best_observer)" ;;
    mixed) quantize mixed --observer "$(best_observer)" --sensitivity --keep-fp32 "$keep" --report "$out/sensitivity" ;;
    detect-fp32) quantize detect_fp32 --observer "$(best_observer)" --detect-fp32 ;;
    qat) qat "qat$tag" ;;
    qat-kd) qat "qat_kd$tag" --teacher float --kd kl ;;
    float-ft)
      if [[ -f $out/float_ft$tag/results.csv ]] && (($(wc -l <"$out/float_ft$tag/results.csv") > epochs)); then echo "float_ft$tag: done"; continue; fi
      resume=()
      [[ -f $out/float_ft$tag/last.safetensors ]] && resume=(--resume "$out/float_ft$tag/last.safetensors")
      build/pdyolo train --weights "$weights" --data "$data" --img-size "$size" --no-progress --hyp "$qat_hyp" --epochs "$epochs" \
        --batch-size 16 --workers 1 --cache ${train_split:+--split "$train_split"} --out "$out/float_ft$tag" "${resume[@]}" \
        >>"$out/float_ft$tag.log" 2>&1 || { tail -5 "$out/float_ft$tag.log"; exit 1; }
      echo "float_ft$tag: $(tail -1 "$out/float_ft$tag/results.csv")" ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
{
  header="| model | observer |" rule="|---|---|"
  for s in "${splits[@]}"; do header+=" mAP@0.5 $s | mAP@0.5:0.95 $s |"; rule+="---|---|"; done
  echo "$header"
  echo "$rule"
  table_row() {  # table_row NAME OBSERVER LOG ROW
    local line="| $1 | $2 |"
    for s in "${splits[@]}"; do
      read -r m50 m <<<"$(row_of "$3" "$s" "$4")"
      line+=" ${m50:--} | ${m:--} |"
    done
    echo "$line"
  }
  [[ -f $out/ptq_minmax.log ]] && table_row "float (fused)" "—" "$out/ptq_minmax.log" float
  for log in "$out"/*.log; do
    grep -q "^integer" "$log" || continue
    observer=$(grep -o "([a-z]* observer)\|images of '[a-z0-9]*' ([a-z]*)" "$log" | head -1 | grep -o "([a-z]*" | tr -d '(')
    table_row "$(basename "$log" .log)" "$observer" "$log" integer
  done
} >"$out/results.md"
cat "$out/results.md"
