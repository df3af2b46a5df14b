#!/usr/bin/env bash
# README command (b): install what is missing; build everything (benchmarks too, so they cannot rot)
# with g++ and, as a second check, clang — both with -Wall -Wextra -Werror; run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Release -DPDYOLO_BUILD_TESTS=ON -DPDYOLO_BUILD_BENCH=ON -DPDYOLO_WERROR=ON >/dev/null
cmake --build build-test -j2
if command -v clang++ >/dev/null; then
  CXX=clang++ cmake -S . -B build-test-clang -DCMAKE_BUILD_TYPE=Release -DPDYOLO_BUILD_TESTS=ON -DPDYOLO_BUILD_BENCH=ON \
    -DPDYOLO_BUILD_EXAMPLES=ON -DPDYOLO_WERROR=ON >/dev/null
  cmake --build build-test-clang -j2 >/dev/null
  echo "clang++ build: warning-free with -Wall -Wextra -Werror"
fi
# Two suites run at once on two cores: passive OpenMP waiting keeps them from spinning against each other.
OMP_WAIT_POLICY=PASSIVE ctest --test-dir build-test --output-on-failure -j2
