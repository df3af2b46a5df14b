#!/usr/bin/env bash
# Fuzzes pdyolo's parsers of untrusted files with libFuzzer (AddressSanitizer + UBSan, clang):
#   scripts/fuzz.sh [--time SECONDS | --runs N] [--seed S] [--jobs J] [--build DIR] [TARGET...]
# TARGET: npy json safetensors pt config xml image (default: all). Each target runs for SECONDS
# (default 30) or N executions, J targets at a time (default 2); --runs with --seed (what CI runs)
# does nearly the same work on any machine, however fast or busy. The corpora grow in
# DIR/corpus/TARGET (DIR: build-fuzz), seeded from tests/fuzz/corpus and the project's own files; a
# finding (crash, sanitizer report, timeout, memory blow-up) is saved in DIR/findings/TARGET and the
# script exits non-zero. Rerun one with: DIR/tests/fuzz/fuzz_TARGET FILE
set -euo pipefail
cd "$(dirname "$0")/.."
limit=(-max_total_time=30) seed=() jobs=2 targets=() build=build-fuzz
while (($#)); do
  case "$1" in
    --time) limit=(-max_total_time="$2"); shift 2 ;;
    --runs) limit=(-runs="$2"); shift 2 ;;
    --seed) seed=(-seed="$2"); shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
((${#targets[@]})) || targets=(npy json safetensors pt config xml image)

CXX=clang++ cmake -S . -B $build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPDYOLO_BUILD_FUZZ=ON -DPDYOLO_BUILD_TESTS=OFF \
  -DPDYOLO_BUILD_CLI=OFF -DPDYOLO_EIGEN=OFF -DPDYOLO_WERROR=ON >/dev/null
cmake --build $build -j2 --target "${targets[@]/#/fuzz_}" >/dev/null

# Seeds: the committed corpus plus the project's own files of each kind.
seed() {  # seed TARGET FILE...
  local dir=$build/corpus/$1; shift
  mkdir -p "$dir"
  for f in "$@"; do [[ -f "$f" ]] && cp -n "$f" "$dir/$(echo "$f" | tr / _)"; done
  return 0
}
for t in "${targets[@]}"; do seed "$t" tests/fuzz/corpus/"$t"/*; done
seed npy tests/data/*.npy
seed config cfg/training/*.yaml cfg/deploy/*.yaml
seed xml data/sample/Annotations/*.xml
seed json tests/fuzz/corpus/safetensors/*.safetensors  # binary prefix: the parser must refuse it cleanly

run_target() {  # run_target TARGET → one summary line; the log in $build/logs/TARGET.log
  local t=$1 log=$build/logs/$1.log
  mkdir -p $build/logs $build/findings/"$t"
  local rc=0
  ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    $build/tests/fuzz/fuzz_"$t" "${limit[@]}" -timeout=20 -rss_limit_mb=3072 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix=$build/findings/"$t"/ $build/corpus/"$t" >"$log" 2>&1 || rc=$?
  local execs rate
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  if ((rc == 0)); then
    printf '  %-12s %12s executions  %8s/s  corpus %5s files  no finding\n' "$t" "${execs:-?}" "${rate:-?}" \
      "$(ls $build/corpus/"$t" | wc -l)"
  else
    printf '  %-12s FINDING (exit %d): %s — see %s\n' "$t" "$rc" "$(ls $build/findings/"$t" | tail -1)" "$log"
    grep -m3 -E "ERROR|SUMMARY|runtime error|terminate" "$log" | sed 's/^/      /' || true
  fi
  return $rc
}
export -f run_target
export build
export limit_str="${limit[*]} ${seed[*]:-}"
echo "fuzzing ${targets[*]} (${limit_str% }, $jobs at a time):"
status=0
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'limit=($limit_str); run_target {}' || status=$?
exit $status
