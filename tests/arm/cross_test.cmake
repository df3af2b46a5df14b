# Cross-compiles one test suite for AArch64 (static) and runs it under qemu-aarch64, so the NEON
# kernels are executed and checked against the reference, not just compiled.
#   cmake -DCXX=... -DQEMU=... -DSOURCE_DIR=... -DTEST=test_kernels -DOUT=... -P cross_test.cmake
file(MAKE_DIRECTORY ${OUT})
execute_process(
  COMMAND ${CXX} -std=c++17 -O2 -Wall -Wextra -Werror -fopenmp -static
          -I${SOURCE_DIR}/include -I${SOURCE_DIR}/tests -I${SOURCE_DIR}/examples
          -DPDYOLO_SOURCE_DIR="${SOURCE_DIR}" ${SOURCE_DIR}/tests/${TEST}.cpp -o ${OUT}/${TEST}
  RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cross-compiling ${TEST} for aarch64 failed:\n${err}")
endif()
# The suites that need AVX-512 (or ../shared, or a GPU) cannot run under qemu-aarch64: excluded.
execute_process(COMMAND ${QEMU} ${OUT}/${TEST} --test-suite-exclude=requires_* RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${TEST} failed under qemu-aarch64")
endif()
