#!/usr/bin/env bash
# The int8 kernels on another x86 machine (the device machine's host CPU, where it has AMX): the
# exactness tests of every kernel it has, then int8 (each kernel) against fp32 on the planned
# executors, at 2 threads and at all its cores. Static binaries and models travel in build-dev/:
#   g++ -std=c++17 -O3 -DNDEBUG -fopenmp -static -Iinclude -Itests -Itools/pdyolo -DPDYOLO_SOURCE_DIR=\".\" \
#       tests/test_int8.cpp -o build-dev/test_int8
#   g++ -std=c++17 -O3 -DNDEBUG -fopenmp -static -Iinclude -Itools/pdyolo -I/usr/include/stb tools/pdyolo/pdyolo.cpp \
#       third_party/stb_image_zeroed.cpp third_party/stb_image_write.cpp -o build-dev/pdyolo
#   build-dev/fixture.pt (the COCO128 fixture), build-dev/fixture_int8.safetensors (pdyolo quantize of it)
# Run from the repository root: bench/int8_device_check.sh
set -uo pipefail
echo "== machine"; lscpu | grep -E 'Model name|^CPU\(s\)|Thread|MHz|L2|L3' ; nproc
echo "flags: $(grep -o -w 'amx_tile\|amx_int8\|avx512_vnni\|avx512vbmi\|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "== exactness"
build-dev/test_int8 --test-suite=requires_amx -s 2>&1 | grep -E 'MESSAGE|SKIPPED|ERROR|test cases' -A1 | grep -v '^--$'
build-dev/test_int8 --test-suite=requires_avx512 2>&1 | tail -2
build-dev/test_int8 --test-suite-exclude=requires_* -s 2>&1 | grep -E 'MESSAGE|ERROR|test cases' -A1 | grep -v '^--$'
echo "== speed (640, batch 1)"
for threads in 2 $(nproc); do
  for round in 1 2; do
    build-dev/pdyolo bench --weights build-dev/fixture.pt --threads $threads --runs 20 --warmup 3 | sed -n 2p | sed "s/^/fp32 t$threads r$round: /"
    for kernel in amx avx512-vnni; do
      build-dev/pdyolo bench --weights build-dev/fixture_int8.safetensors --threads $threads --runs 20 --warmup 3 --int8-kernel $kernel 2>&1 |
        sed -n 2p | sed "s/^/int8 $kernel t$threads r$round: /"
    done
  done
done
build-dev/pdyolo bench --weights build-dev/fixture_int8.safetensors --threads 2 --runs 20 --warmup 3 --int8-kernel amx --profile 2>&1 | sed -n 3,30p
