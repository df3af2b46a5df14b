#!/usr/bin/env bash
# README command (a): install what is missing, build, and run the main job: train yolov7-tiny from
# scratch on the 8-image sample dataset shipped in data/sample, evaluate it, draw its detections.
# A few minutes on 2 cores. Options after the script name go to `pdyolo train` (e.g. --epochs 50).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPDYOLO_BUILD_TESTS=OFF >/dev/null
cmake --build build -j2
out=runs/demo
rm -rf "$out"
./build/pdyolo train --cfg cfg/training/yolov7-tiny.yaml --data data/sample --split train \
  --hyp cfg/hyp/hyp.sample.yaml --epochs 300 --batch-size 8 --img-size 256 --workers 1 --cache --notest \
  --out "$out" "$@"
./build/pdyolo eval --weights "$out/last.safetensors" --data data/sample --split train --img-size 256 --out "$out/eval"
./build/pdyolo detect --weights "$out/last.safetensors" --source data/sample/JPEGImages --img-size 256 \
  --out "$out/detections"
echo "results: $out/results.csv, plots: $out/losses.png $out/map.png $out/eval/, detections: $out/detections/"
