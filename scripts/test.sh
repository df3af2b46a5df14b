#!/usr/bin/env bash
# README command (b): install what is missing, build everything (benchmarks too, so they cannot rot),
# and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Release -DPDYOLO_BUILD_TESTS=ON -DPDYOLO_BUILD_BENCH=ON -DPDYOLO_WERROR=ON >/dev/null
cmake --build build-test -j2
ctest --test-dir build-test --output-on-failure -j2
