#!/usr/bin/env bash
# pdyolo vs ONNX Runtime on the same model, in the same run: rounds of `pdyolo bench` and
# ../shared/tools/ort_bench.py interleaved (the machines are shared and noisy, so only same-run
# ratios mean anything), then the latency ratio ours/ORT per round and its median. BASELINE=BINARY
# times another pdyolo build in the same rounds (ratio baseline/ORT too).
#   bench/ort_compare.sh PDYOLO_BINARY MODEL.onnx [ROUNDS] -- PDYOLO_BENCH_ARGS...
# e.g. the fixture checkpoint and its ONNX export (../shared/fixtures/yolov7-tiny-coco128):
#   bench/ort_compare.sh build-bench/pdyolo ../shared/fixtures/yolov7-tiny-coco128/yolov7-tiny-coco128-640.onnx 3 \
#     -- --weights ../shared/fixtures/yolov7-tiny-coco128/yolov7-tiny-coco128.pt
# int8 as well: INT8=our int8 model file and ORT_INT8=ONNX Runtime's int8 model (bench/ort_quantize.py)
# time both in the same rounds, with the ratios int8/our fp32 and our int8/ORT int8.
# ONNX Runtime is the PyPI package onnxruntime, installed on first use (pip) — bench tooling only,
# never a dependency of the library. Environment: THREADS (2), SIZE (640), RUNS (50), BATCH (1),
# PYTHON (python3).
set -euo pipefail
usage="usage: ort_compare.sh PDYOLO_BINARY MODEL.onnx [ROUNDS] -- PDYOLO_BENCH_ARGS..."
pdyolo=${1:?$usage}
onnx=${2:?$usage}
shift 2
rounds=3
if [[ $# -gt 0 && $1 != -- ]]; then rounds=$1; shift; fi
[[ ${1:-} == -- ]] && shift
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED:-$here/../shared}
threads=${THREADS:-2} size=${SIZE:-640} runs=${RUNS:-50} batch=${BATCH:-1}
python=${PYTHON:-python3}
[[ -f $onnx ]] || { echo "ort_compare: no ONNX model at $onnx" >&2; exit 2; }
"$python" -c "import onnxruntime" 2>/dev/null || "$python" -m pip install -q onnxruntime numpy >&2
field() { sed -n "s/.*\"$1\": *\([0-9.]*\).*/\1/p"; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
ratios=() base_ratios=() int8_fp32=() int8_ort=()
echo "model: $onnx   threads $threads, ${size}x${size}, batch $batch, $runs runs per round"
[[ -n ${INT8:-} ]] && echo "int8: $INT8 ($("$pdyolo" version | sed -n 's/^int8 conv kernel: //p')) vs ${ORT_INT8:?ORT_INT8 must name the ONNX Runtime int8 model}"
for ((r = 1; r <= rounds; r++)); do
  ours=$(OMP_NUM_THREADS=$threads "$pdyolo" bench "$@" --img-size "$size" --threads "$threads" --runs "$runs" --batch-size "$batch" --json | tail -1)
  ort=$("$python" "$shared/tools/ort_bench.py" "$onnx" "$size" "$threads" "$runs" "$batch")
  p50=$(field p50_ms <<<"$ours") ort_p50=$(field p50_ms <<<"$ort")
  ratios+=("$(ratio "$p50" "$ort_p50")")
  line="round $r: pdyolo P50 $p50 ms (P95 $(field p95_ms <<<"$ours"), peak RSS $(field peak_rss_mb <<<"$ours") MB) |"
  line+=" ORT P50 $ort_p50 ms (P95 $(field p95_ms <<<"$ort"), RSS $(field peak_rss_mb <<<"$ort") MB) | ours/ORT ${ratios[-1]}"
  if [[ -n ${BASELINE:-} ]]; then
    base=$(OMP_NUM_THREADS=$threads "$BASELINE" bench "$@" --img-size "$size" --threads "$threads" --runs "$runs" --json | tail -1)
    base_ratios+=("$(ratio "$(field p50_ms <<<"$base")" "$ort_p50")")
    line+=" | baseline P50 $(field p50_ms <<<"$base") ms, baseline/ORT ${base_ratios[-1]}"
  fi
  if [[ -n ${INT8:-} ]]; then
    q=$(OMP_NUM_THREADS=$threads "$pdyolo" bench --weights "$INT8" --img-size "$size" --threads "$threads" --runs "$runs" --batch-size "$batch" --json | tail -1)
    ort_q=$("$python" "$shared/tools/ort_bench.py" "$ORT_INT8" "$size" "$threads" "$runs" "$batch")
    int8_fp32+=("$(ratio "$(field p50_ms <<<"$q")" "$p50")") int8_ort+=("$(ratio "$(field p50_ms <<<"$q")" "$(field p50_ms <<<"$ort_q")")")
    line+=$'\n'"         int8: pdyolo P50 $(field p50_ms <<<"$q") ms (RSS $(field peak_rss_mb <<<"$q") MB) | ORT int8 P50 $(field p50_ms <<<"$ort_q") ms"
    line+=" (RSS $(field peak_rss_mb <<<"$ort_q") MB) | int8/our fp32 ${int8_fp32[-1]}, our int8/ORT int8 ${int8_ort[-1]}"
  fi
  echo "$line"
done
echo "median latency ratio ours/ORT: $(printf '%s\n' "${ratios[@]}" | median)"
[[ -n ${BASELINE:-} ]] && echo "median latency ratio baseline/ORT: $(printf '%s\n' "${base_ratios[@]}" | median)"
if [[ -n ${INT8:-} ]]; then
  echo "median latency ratio our int8/our fp32: $(printf '%s\n' "${int8_fp32[@]}" | median)"
  echo "median latency ratio our int8/ORT int8: $(printf '%s\n' "${int8_ort[@]}" | median)"
fi
exit 0
