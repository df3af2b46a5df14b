# pdyolo_run(EXPECT ARGS...): runs the pdyolo CLI (${PDYOLO}) with ARGS, prints its output, and fails
# the test when it exits non-zero or its output does not match the regular expression EXPECT.
function(pdyolo_run expect)
  execute_process(COMMAND ${PDYOLO} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pdyolo ${ARGN} failed (${rc}): ${err}")
  endif()
  if(NOT out MATCHES "${expect}")
    message(FATAL_ERROR "pdyolo ${ARGN}: output does not match ${expect}")
  endif()
endfunction()
