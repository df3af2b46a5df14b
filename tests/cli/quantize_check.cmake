# `pdyolo quantize` and `pdyolo qat`: a seeded yolov7-tiny calibrated on the sample images, written as an int8 model
# file (about a quarter of the float file), then run by eval, detect, forward (integer and
# --simulate), bench and info; commands that need a float model refuse it by name.
#   cmake -DPDYOLO=... -DSOURCE_DIR=... -DOUT=... -P quantize_check.cmake
file(REMOVE_RECURSE ${OUT})
include(${CMAKE_CURRENT_LIST_DIR}/run_pdyolo.cmake)
pdyolo_run("nc=80" convert --cfg ${SOURCE_DIR}/cfg/training/yolov7-tiny.yaml --seed 2 --out ${OUT}/float.safetensors)
pdyolo_run("82 quantizers calibrated on 4 images of 'train' \\(kl observer\\).*node by node: [0-9.]+ % equal.*wrote .*int8.safetensors \\([0-9.]+ MB.*float +[0-9.]+ +[0-9.]+.*fake-quant +[0-9.]+ +[0-9.]+.*integer +[0-9.]+ +[0-9.]+"
           quantize --weights ${OUT}/float.safetensors --data ${SOURCE_DIR}/data/sample --split train --calib-images 4 --observer kl
           --eval-split train --agreement --img-size 64 --no-progress --out ${OUT}/int8.safetensors)
file(SIZE ${OUT}/float.safetensors float_bytes)
file(SIZE ${OUT}/int8.safetensors int8_bytes)
math(EXPR percent "100 * ${int8_bytes} / ${float_bytes}")
if(percent GREATER 27)
  message(FATAL_ERROR "the int8 file is ${percent} % of the float file")
endif()
set(int8 --weights ${OUT}/int8.safetensors)
pdyolo_run("int8, on the integer runtime, int8 kernel .*8 images in" eval ${int8} --data ${SOURCE_DIR}/data/sample --split train --img-size 64
           --no-progress)
pdyolo_run("detections in 8 images" detect ${int8} --source ${SOURCE_DIR}/data/sample/JPEGImages --img-size 64 --no-progress
           --out ${OUT}/detect)
pdyolo_run("int8 model file: 82 quantizers, 0 convs kept in float" info ${int8})
pdyolo_run("int8, integer runtime, int8 kernel .*latency ms: P50" bench ${int8} --img-size 64 --runs 2 --warmup 0)
pdyolo_run("3 raw maps .*\\(integer runtime, int8 kernel" forward ${int8} --input ${SOURCE_DIR}/tests/data/images_1x3x32x32.npy
           --out ${OUT}/forward)
pdyolo_run("3 raw maps .*\\(integer runtime, scalar reference\\)" forward ${int8} --reference
           --input ${SOURCE_DIR}/tests/data/images_1x3x32x32.npy --out ${OUT}/reference)
foreach(map raw_p3 raw_p4 raw_p5 decoded)  # the int8 kernels and the scalar reference: the same bytes
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${OUT}/forward/${map}.npy ${OUT}/reference/${map}.npy RESULT_VARIABLE differ)
  if(differ)
    message(FATAL_ERROR "forward: ${map}.npy of the int8 kernels differs from the scalar reference's")
  endif()
endforeach()
pdyolo_run("3 raw maps .*\\(fake-quant simulation\\)" forward ${int8} --simulate
           --input ${SOURCE_DIR}/tests/data/images_1x3x32x32.npy --out ${OUT}/simulate)
execute_process(COMMAND ${PDYOLO} train ${int8} --data ${SOURCE_DIR}/data/sample --split train --epochs 1 --out ${OUT}/train
                        --hyp ${SOURCE_DIR}/cfg/hyp/hyp.scratch.tiny.yaml
                RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_QUIET)
if(NOT rc EQUAL 1 OR NOT err MATCHES "int8.safetensors: an int8 model file \\(pdyolo quantize's\\); this command needs a float model")
  message(FATAL_ERROR "train on an int8 file: exit ${rc}, ${err}")
endif()
# Mixed precision: the sensitivity table, CSV and plot; the two most sensitive convs, model.0 and the
# head kept in float (3 head convs), stored so and run by eval.
pdyolo_run("rank +conv +drop@.5.*wrote .*sensitivity.csv.*kept in float: model.0.conv.*model.77.m.2"
           quantize --weights ${OUT}/float.safetensors --data ${SOURCE_DIR}/data/sample --split train --calib-images 4 --sensitivity
           --keep-fp32 2 --fp32-layers model.0 --detect-fp32 --img-size 64 --no-progress --out ${OUT}/mixed/int8.safetensors)
file(STRINGS ${OUT}/mixed/sensitivity.csv rows)
list(LENGTH rows row_count)
if(NOT row_count EQUAL 59 OR NOT EXISTS ${OUT}/mixed/sensitivity.png)
  message(FATAL_ERROR "sensitivity.csv has ${row_count} lines (a header and 58 convs expected), or no sensitivity.png")
endif()
pdyolo_run("int8 model file: 82 quantizers, [56] convs kept in float" info --weights ${OUT}/mixed/int8.safetensors)
pdyolo_run("int8, on the integer runtime, int8 kernel .*8 images in" eval --weights ${OUT}/mixed/int8.safetensors --data ${SOURCE_DIR}/data/sample
           --split train --img-size 64 --no-progress)
execute_process(COMMAND ${PDYOLO} quantize --weights ${OUT}/float.safetensors --data ${SOURCE_DIR}/data/sample --calib-images 1
                        --split train --fp32-layers model.0,model.999 --img-size 64 --no-progress
                RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_QUIET)
if(NOT rc EQUAL 1 OR NOT err MATCHES "'model.999' names no conv")
  message(FATAL_ERROR "an unknown --fp32-layers name: exit ${rc}, ${err}")
endif()
# Quantization-aware training: one epoch, then resumed to two; distilled from the float model; the
# int8 file it writes runs; an int8 file is refused as its starting point.
set(qat qat --weights ${OUT}/float.safetensors --data ${SOURCE_DIR}/data/sample --split train --calib-split train --calib-images 4
        --hyp ${SOURCE_DIR}/cfg/hyp/hyp.scratch.tiny.yaml --batch-size 4 --img-size 64 --workers 0 --observer-steps 2 --teacher float
        --kd kl --no-progress --out ${OUT}/qat.safetensors)
pdyolo_run("QAT of .*82 quantizers calibrated on 4 images of 'train' \\(minmax\\), ranges frozen after 2 steps.*distilling from float.*wrote .*qat.safetensors"
           ${qat} --epochs 1)
pdyolo_run("wrote .*qat.safetensors.*float +[0-9.]+ +[0-9.]+.*fake-quant +[0-9.]+ +[0-9.]+.*integer +[0-9.]+ +[0-9.]+" ${qat} --epochs 2 --resume
           --eval-split train)
file(STRINGS ${OUT}/qat_qat/results.csv epochs)
list(LENGTH epochs epoch_lines)
if(NOT epoch_lines EQUAL 3)
  message(FATAL_ERROR "qat_qat/results.csv has ${epoch_lines} lines (a header and 2 epochs expected)")
endif()
pdyolo_run("int8 model file: 82 quantizers, 0 convs kept in float" info --weights ${OUT}/qat.safetensors)
execute_process(COMMAND ${PDYOLO} qat ${int8} --data ${SOURCE_DIR}/data/sample --split train --calib-split train --out ${OUT}/again.safetensors
                RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_QUIET)
if(NOT rc EQUAL 1 OR NOT err MATCHES "an int8 model file")
  message(FATAL_ERROR "qat on an int8 file: exit ${rc}, ${err}")
endif()
