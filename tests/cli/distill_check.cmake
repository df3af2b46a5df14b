# `pdyolo train --teacher`: a narrower yolov7-tiny distils from a seeded yolov7-tiny with feature
# imitation (adapters), logs the KD term in results.csv, resumes; a teacher with other classes is
# refused with both counts named.
#   cmake -DPDYOLO=... -DSOURCE_DIR=... -DOUT=... -P distill_check.cmake
file(REMOVE_RECURSE ${OUT})
include(${CMAKE_CURRENT_LIST_DIR}/run_pdyolo.cmake)
set(train train --cfg ${SOURCE_DIR}/cfg/training/yolov7-tiny-half.yaml --hyp ${SOURCE_DIR}/cfg/hyp/hyp.scratch.tiny.yaml
          --data ${SOURCE_DIR}/data/sample --split train
          --batch-size 4 --img-size 64 --notest --no-progress --teacher ${OUT}/teacher.safetensors --kd feature --out ${OUT}/run)
pdyolo_run("nc=80" convert --cfg ${SOURCE_DIR}/cfg/training/yolov7-tiny.yaml --seed 1 --out ${OUT}/teacher.safetensors)
pdyolo_run("distilling from .*teacher.safetensors \\(feature\\): L = 0.7·task \\+ 0.3·KD" ${train} --epochs 2)
pdyolo_run("distilling from" ${train} --epochs 3 --resume)
file(STRINGS ${OUT}/run/results.csv rows)
list(LENGTH rows count)
list(GET rows 0 header)
list(GET rows 3 last)
if(NOT count EQUAL 4 OR NOT header MATCHES ",kd$" OR NOT last MATCHES "^2,.*,0\\.[0-9]*[1-9][0-9]*$")
  message(FATAL_ERROR "results.csv: expected 3 epochs with a positive kd column, got:\n${rows}")
endif()
pdyolo_run("nc=3" convert --cfg ${SOURCE_DIR}/cfg/training/yolov7-tiny.yaml --nc 3 --out ${OUT}/teacher3.safetensors)
execute_process(COMMAND ${PDYOLO} train --cfg ${SOURCE_DIR}/cfg/training/yolov7-tiny-half.yaml --data ${SOURCE_DIR}/data/sample
                        --hyp ${SOURCE_DIR}/cfg/hyp/hyp.scratch.tiny.yaml
                        --split train --epochs 1 --teacher ${OUT}/teacher3.safetensors --out ${OUT}/bad
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 1 OR NOT err MATCHES "teacher3.safetensors: the teacher detects 3 classes, the student 80" OR err MATCHES "Sanitizer|runtime error")
  message(FATAL_ERROR "a teacher with other classes: exit ${rc}, ${err}")
endif()
message("distillation from the CLI: trained, logged, resumed; mismatched teacher refused")
