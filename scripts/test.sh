#!/usr/bin/env bash
# README command (b): install what is missing; build everything (benchmarks too, so they cannot rot)
# with g++ -Wall -Wextra -Werror and run the whole test suite; then build everything again with clang
# (-Werror too) under AddressSanitizer + UBSan and run the suites that read untrusted input there;
# then fuzz each parser briefly.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Release -DPDYOLO_BUILD_TESTS=ON -DPDYOLO_BUILD_BENCH=ON -DPDYOLO_WERROR=ON >/dev/null
cmake --build build-test -j2
# Two suites run at once on two cores: passive OpenMP waiting keeps them from spinning against each other.
rc=0
OMP_WAIT_POLICY=PASSIVE ctest --test-dir build-test --output-on-failure -j2 || rc=$?
# The clang build doubles as the sanitizer build: everything but the Eigen comparison (a third-party
# GEMM, off under the sanitizers) compiles warning-free with clang too, and
# the suites that parse and load untrusted files (models, int8 files, datasets, configs, the CLI's
# flags) run under AddressSanitizer + UBSan, halting on the first report — bad input must end in
# errors, never in memory errors or undefined behaviour. The kernel, training and AArch64 suites ran
# above; rerunning them here would double CI's time for little (the kernels are checked against the
# references on every backend).
sanitized_suites=(test_core test_io test_data test_graph test_models test_eval test_quant test_int8)
if command -v clang++ >/dev/null; then
  CXX=clang++ cmake -S . -B build-test-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPDYOLO_BUILD_TESTS=ON -DPDYOLO_BUILD_CLI=ON \
    -DPDYOLO_BUILD_BENCH=ON -DPDYOLO_EIGEN=OFF -DPDYOLO_WERROR=ON \
    "-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
    "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined" >/dev/null
  cmake --build build-test-asan -j2 >/dev/null
  echo "clang++ build (all but the Eigen comparison): warning-free with -Wall -Wextra -Werror"
  echo "sanitizer build (ASan + UBSan): ${sanitized_suites[*]} and the CLI tests"
  ASAN_OPTIONS=halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 OMP_WAIT_POLICY=PASSIVE \
    ctest --test-dir build-test-asan --output-on-failure -j2 \
      -R "^($(IFS='|'; echo "${sanitized_suites[*]}"))(_.*)?\$|^cli_" || rc=$?
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
