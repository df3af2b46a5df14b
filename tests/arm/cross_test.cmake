# Cross-compiles one test suite for AArch64 (static) and runs it under qemu-aarch64, so the NEON
# kernels are executed and checked against the reference, not just compiled. HOST: the suite's x86
# build, which writes what its requires_cross test cases must reproduce under qemu (test_int8: an
# int8 model file and its raw maps).
#   cmake -DCXX=... -DQEMU=... -DSOURCE_DIR=... -DTEST=test_kernels -DHOST=... -DOUT=... -P cross_test.cmake
file(MAKE_DIRECTORY ${OUT})
execute_process(
  COMMAND ${CXX} -std=c++17 -O2 -Wall -Wextra -Werror -fopenmp -static
          -I${SOURCE_DIR}/include -I${SOURCE_DIR}/tests -I${SOURCE_DIR}/examples
          -DPDYOLO_SOURCE_DIR="${SOURCE_DIR}" ${SOURCE_DIR}/tests/${TEST}.cpp -o ${OUT}/${TEST}
  RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cross-compiling ${TEST} for aarch64 failed:\n${err}")
endif()
# The suites that need x86 (AVX-512, AVX2), ../shared or a GPU cannot run under qemu-aarch64:
# excluded. requires_neon runs here.
execute_process(COMMAND ${QEMU} ${OUT}/${TEST} --test-suite-exclude=requires_shared,requires_avx512,requires_amx,requires_x86,requires_gpu,requires_cross
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${TEST} failed under qemu-aarch64")
endif()
# requires_cross: the x86 build (HOST) writes what the aarch64 build must reproduce bit for bit.
execute_process(COMMAND ${HOST} --test-suite=requires_cross --list-test-cases OUTPUT_VARIABLE listed RESULT_VARIABLE rc)
if(listed MATCHES "every machine")
  set(dir ${OUT}/${TEST}_cross)
  file(REMOVE_RECURSE ${dir})
  file(MAKE_DIRECTORY ${dir})
  execute_process(COMMAND ${CMAKE_COMMAND} -E env PDYOLO_INT8_CROSS=write:${dir} ${HOST} --test-suite=requires_cross RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${TEST} (x86) could not write the cross-machine reference")
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} -E env PDYOLO_INT8_CROSS=compare:${dir} ${QEMU} ${OUT}/${TEST} --test-suite=requires_cross
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${TEST} under qemu-aarch64 differs from the x86 build")
  endif()
endif()
