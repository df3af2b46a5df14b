# Runs the pdyolo CLI on ../shared data: ARGS is a ;-list where SHARED stands for the shared
# folder; the output must match EXPECT. Prints SKIPPED (CTest reports a skip) without ../shared.
set(shared "${SOURCE_DIR}/../shared")
if(NOT EXISTS "${shared}/fixtures")
  message("SKIPPED: ../shared is absent")
  return()
endif()
string(REPLACE "SHARED" "${shared}" args "${ARGS}")
include(${CMAKE_CURRENT_LIST_DIR}/run_pdyolo.cmake)
pdyolo_run("${EXPECT}" ${args})
