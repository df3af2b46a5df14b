#!/usr/bin/env bash
# README command (a): install what is missing, build, and run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPDYOLO_BUILD_TESTS=OFF >/dev/null
cmake --build build -j2
./build/pdyolo demo "$@"
