# Sourced by bench/bccd_distill.sh and bench/bccd_prune.sh: the BCCD data (../shared/data/bccd-voc)
# at 256 px, the resumable train-then-test step and the results table. Before calling them the
# sourcing script sets `out` (its run folder) and `train_args` (the `pdyolo train` options all its
# steps share).
data=../shared/data/bccd-voc
size=256

evaluate() {  # evaluate MODEL SPLIT OUT.json [EVAL OPTION...]
  local model=$1 split=$2 json=$3; shift 3
  build/pdyolo eval --weights "$model" --data "$data" --split "$split" --img-size $size --no-progress --json "$@" | tail -1 >"$json"
}

# Trains $out/NAME (resuming an interrupted run; skipped once it has been tested), its checkpoint
# chosen on `val` by the trainer (best.safetensors), then evaluates that checkpoint once on `test`.
train_step() {  # train_step NAME TRAIN OPTION...
  local name=$1; shift
  local dir=$out/$name
  if [[ -f $dir/test.json ]]; then echo "$name: done"; return; fi
  local resume=()
  [[ -f $dir/last.safetensors ]] && resume=(--resume)
  local start=$SECONDS
  build/pdyolo train "${train_args[@]}" --out "$dir" "$@" "${resume[@]}" >"$dir.log" 2>&1 || { tail -5 "$dir.log"; exit 1; }
  echo "$((SECONDS - start))" >>"$dir/seconds"
  evaluate "$dir/best.safetensors" test "$dir/test.json" --out "$dir/test"
  echo "$name: $(cat "$dir/test.json")"
}

# Val fitness of a training run's chosen epoch (0.1·mAP@.5 + 0.9·mAP@.5:.95, the trainer's), or with
# `map50`, that epoch's val mAP@0.5.
chosen_epoch() {  # chosen_epoch RESULTS.csv [map50]
  awk -F, -v want="${2:-fitness}" 'NR > 1 { f = 0.1 * $8 + 0.9 * $9; if (f > m) { m = f; v = $8 } }
    END { print (want == "map50" ? v : m + 0) }' "$1"
}

metric() { grep -o "\"$2\":[0-9.e-]*" "$1" | cut -d: -f2; }  # metric FILE.json KEY

# $out/results.md: every finished model's test mAP, its val mAP@0.5 (a training run's chosen epoch, or
# the model's own val.json) and the seconds it took.
table() {
  {
    echo "| model | mAP@0.5 (test) | mAP@0.5:0.95 (test) | mAP@0.5 (val) | seconds |"
    echo "|---|---|---|---|---|"
    local dir
    for dir in "$out"/*/; do
      local name; name=$(basename "$dir")
      [[ -f $dir/test.json ]] || continue
      local val="" seconds=""
      [[ -f $dir/val.json ]] && val=$(metric "$dir/val.json" map50)
      [[ -z $val && -f $dir/results.csv ]] && val=$(chosen_epoch "$dir/results.csv" map50)
      [[ -f $dir/seconds ]] && seconds=$(awk '{ s += $1 } END { print s }' "$dir/seconds")
      echo "| $name | $(metric "$dir/test.json" map50) | $(metric "$dir/test.json" map50_95) | $val | $seconds |"
    done
  } >"$out/results.md"
  cat "$out/results.md"
}
