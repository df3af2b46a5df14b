#!/usr/bin/env bash
# README command (b): install what is missing; build everything (benchmarks too, so they cannot rot)
# with g++ and, as a second check, clang — both with -Wall -Wextra -Werror; run the whole test suite,
# then run it again built with AddressSanitizer + UBSan, then fuzz each parser briefly.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Release -DPDYOLO_BUILD_TESTS=ON -DPDYOLO_BUILD_BENCH=ON -DPDYOLO_WERROR=ON >/dev/null
cmake --build build-test -j2
if command -v clang++ >/dev/null; then
  CXX=clang++ cmake -S . -B build-test-clang -DCMAKE_BUILD_TYPE=Release -DPDYOLO_BUILD_TESTS=ON -DPDYOLO_BUILD_BENCH=ON \
    -DPDYOLO_BUILD_CLI=ON -DPDYOLO_WERROR=ON >/dev/null
  cmake --build build-test-clang -j2 >/dev/null
  echo "clang++ build: warning-free with -Wall -Wextra -Werror"
fi
# Two suites run at once on two cores: passive OpenMP waiting keeps them from spinning against each other.
rc=0
OMP_WAIT_POLICY=PASSIVE ctest --test-dir build-test --output-on-failure -j2 || rc=$?
# The suite again under AddressSanitizer + UBSan (clang), halting on the first report: bad input must
# end in errors, never in memory errors or undefined behaviour. (The AArch64 and install checks ran above.)
if command -v clang++ >/dev/null; then
  CXX=clang++ cmake -S . -B build-test-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPDYOLO_BUILD_TESTS=ON -DPDYOLO_BUILD_CLI=ON \
    -DPDYOLO_EIGEN=OFF -DPDYOLO_WERROR=ON "-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
    "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined" >/dev/null
  cmake --build build-test-asan -j2 >/dev/null
  echo "sanitizer build (ASan + UBSan):"
  ASAN_OPTIONS=halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 OMP_WAIT_POLICY=PASSIVE \
    ctest --test-dir build-test-asan --output-on-failure -j2 -E "^aarch64_|^package_" || rc=$?
  # Each libFuzzer target replays its corpus (the regression inputs), then runs 50,000 executions
  # from a fixed seed, so they cannot rot; counted in executions, not seconds, so that a slow or
  # busy machine does the same work (the long runs: tests/fuzz/FUZZING.md).
  scripts/fuzz.sh --runs 50000 --seed 1 || rc=$?
fi
# CTest lists the skipped tests; the reasons are what each printed after "SKIPPED:".
log=build-test/Testing/Temporary/LastTest.log
if grep -q "SKIPPED:" "$log" 2>/dev/null; then
  echo "Why tests were skipped:"
  grep -o "SKIPPED: .*" "$log" | sort | uniq -c | sed 's/^/  /'
fi
exit $rc
