# `pdyolo forward` on the reference fixture: runs the CLI and checks it wrote the four outputs.
# Prints SKIPPED (CTest reports the test as skipped) when ../shared is absent.
set(fixture "${SOURCE_DIR}/../shared/fixtures/yolov7-tiny-coco128")
if(NOT EXISTS "${fixture}/yolov7-tiny-coco128.pt")
  message("SKIPPED: ../shared is absent; no fixture checkpoint to run")
  return()
endif()
file(REMOVE_RECURSE ${OUT})
execute_process(COMMAND ${PDYOLO} forward --weights ${fixture}/yolov7-tiny-coco128.pt --input ${fixture}/input_320.npy
                        --out ${OUT} --fuse RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pdyolo forward failed")
endif()
foreach(f raw_p3.npy raw_p4.npy raw_p5.npy decoded.npy)
  if(NOT EXISTS ${OUT}/${f})
    message(FATAL_ERROR "pdyolo forward did not write ${f}")
  endif()
endforeach()
