# `pdyolo convert` and `pdyolo info --weights`: a config becomes a seeded random model file, which
# info reads with no config (same sizes as the config), and which converts again, fused.
#   cmake -DPDYOLO=... -DSOURCE_DIR=... -DOUT=... -P convert_check.cmake
file(REMOVE_RECURSE ${OUT})
file(MAKE_DIRECTORY ${OUT})
include(${CMAKE_CURRENT_LIST_DIR}/run_pdyolo.cmake)
set(cfg ${SOURCE_DIR}/cfg/training/yolov7-tiny.yaml)
pdyolo_run("nc=3" convert --cfg ${cfg} --nc 3 --seed 7 --out ${OUT}/tiny.safetensors)
pdyolo_run("\"params\":6020400,\"gflops\":13.0384" info --cfg ${cfg} --nc 3 --json)
pdyolo_run("\"params\":6020400,\"gflops\":13.0384" info --weights ${OUT}/tiny.safetensors --json)
pdyolo_run("fused [0-9]+ conv\\+bn" convert --weights ${OUT}/tiny.safetensors --fuse --out ${OUT}/tiny-fused.safetensors)
pdyolo_run("group 0: 3 ch \\(fixed\\): input" info --weights ${OUT}/tiny-fused.safetensors --groups --verbose)
# detect over images none of which can be read is a failure, not an empty result.
file(WRITE ${OUT}/images/not-an-image.jpg "plain text")
execute_process(COMMAND ${PDYOLO} detect --weights ${OUT}/tiny.safetensors --source ${OUT}/images --img-size 64 --no-progress
                        --out ${OUT}/detections RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 1 OR NOT err MATCHES "none of the 1 image\\(s\\) could be read" OR err MATCHES "Sanitizer|runtime error")
  message(FATAL_ERROR "detect over unreadable images: exit ${rc}, ${err}")
endif()
