#!/usr/bin/env bash
# pdyolo vs ONNX Runtime on the same model, in the same run: rounds of `pdyolo bench` and
# ../shared/tools/ort_bench.js interleaved (the machines are shared and noisy, so only same-run
# ratios mean anything), then the latency ratio ours/ORT per round and its median.
#   bench/ort_compare.sh PDYOLO_BINARY MODEL.onnx [ROUNDS] -- PDYOLO_BENCH_ARGS...
# e.g. the fixture checkpoint and its ONNX export (../shared/fixtures/yolov7-tiny-coco128):
#   bench/ort_compare.sh build-bench/pdyolo ../shared/fixtures/yolov7-tiny-coco128/yolov7-tiny-coco128-640.onnx 3 \
#     -- --weights ../shared/fixtures/yolov7-tiny-coco128/yolov7-tiny-coco128.pt
# ONNX Runtime is the npm package onnxruntime-node, installed on first use (with --ignore-scripts:
# its install script fetches GPU files) under $ORT_DIR (default build-bench/ort) — bench tooling
# only, never a dependency of the library. Environment: THREADS (2), SIZE (640), RUNS (50).
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
threads=${THREADS:-2} size=${SIZE:-640} runs=${RUNS:-50}
ort_dir=${ORT_DIR:-$here/build-bench/ort}
[[ -f $onnx ]] || { echo "ort_compare: no ONNX model at $onnx" >&2; exit 2; }
if [[ ! -d $ort_dir/node_modules/onnxruntime-node ]]; then
  command -v npm >/dev/null || { echo "ort_compare: npm is missing (apt-get install npm)" >&2; exit 2; }
  mkdir -p "$ort_dir"
  (cd "$ort_dir" && npm install --ignore-scripts --no-save --no-audit --no-fund onnxruntime-node >&2)
fi
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
ratios=()
echo "model: $onnx   threads $threads, ${size}x${size}, $runs runs per round"
for ((r = 1; r <= rounds; r++)); do
  ours=$(OMP_NUM_THREADS=$threads "$pdyolo" bench "$@" --img-size "$size" --threads "$threads" --runs "$runs" --json | tail -1)
  ort=$(NODE_PATH=$ort_dir/node_modules node "$shared/tools/ort_bench.js" "$onnx" "$size" "$threads" "$runs")
  p50=$(field p50_ms <<<"$ours") ort_p50=$(field p50_ms <<<"$ort")
  ratio=$(awk -v a="$p50" -v b="$ort_p50" 'BEGIN { printf "%.3f", a / b }')
  ratios+=("$ratio")
  echo "round $r: pdyolo P50 $p50 ms (P95 $(field p95_ms <<<"$ours"), peak RSS $(field peak_rss_mb <<<"$ours") MB) |" \
       "ORT P50 $ort_p50 ms (P95 $(field p95_ms <<<"$ort"), RSS $(field rss_mb <<<"$ort") MB) | ours/ORT $ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
echo "median latency ratio ours/ORT: $median"
