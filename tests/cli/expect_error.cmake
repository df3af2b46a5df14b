# Runs ${PDYOLO} with ${ARGS} (a list) and passes only when it ends as bad input should: exit status 1
# and "pdyolo: error: " then text matching ${EXPECT} on stderr. A crash, a sanitizer report (whose
# own non-zero exit a plain WILL_FAIL test would count as a pass) or any other status fails.
execute_process(COMMAND ${PDYOLO} ${ARGS} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${err}")
if(err MATCHES "Sanitizer|runtime error|terminate called")
  message(FATAL_ERROR "pdyolo ${ARGS}: a sanitizer report or an uncaught exception")
endif()
if(NOT rc EQUAL 1 OR NOT err MATCHES "pdyolo: error: [^\n]*${EXPECT}")
  message(FATAL_ERROR "pdyolo ${ARGS}: exit ${rc}; expected exit 1 and an error matching '${EXPECT}'")
endif()
