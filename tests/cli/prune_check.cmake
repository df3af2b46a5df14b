# `pdyolo prune`: a seeded yolov7-tiny loses 40 % of its channels; the pruned file then goes through
# info, detect, eval and bench with no config, and --mask-only keeps the shapes.
#   cmake -DPDYOLO=... -DSOURCE_DIR=... -DOUT=... -P prune_check.cmake
file(REMOVE_RECURSE ${OUT})
include(${CMAKE_CURRENT_LIST_DIR}/run_pdyolo.cmake)
set(cfg --cfg ${SOURCE_DIR}/cfg/training/yolov7-tiny.yaml --seed 3)
pdyolo_run("55 groups cut \\(l1, ratio 0.4\\): 6,228,762 -> [0-9,]+ parameters" prune ${cfg} --ratio 0.4 --out ${OUT}/pruned.safetensors
           --report ${OUT}/report.json)
pdyolo_run("pruned.safetensors: 78 layers, 2,[0-9,]+ parameters" info --weights ${OUT}/pruned.safetensors)
pdyolo_run("detections in 1 images" detect --weights ${OUT}/pruned.safetensors --source ${SOURCE_DIR}/data/sample/JPEGImages/000000000030.jpg
           --img-size 64 --no-progress --out ${OUT}/detect)
pdyolo_run("mAP@.5" eval --weights ${OUT}/pruned.safetensors --data ${SOURCE_DIR}/data/sample --split train --img-size 64 --no-progress
           --out ${OUT}/eval)
pdyolo_run("latency ms: P50" bench --weights ${OUT}/pruned.safetensors --img-size 64 --runs 2 --warmup 1)
pdyolo_run("6,228,762 -> 6,228,762 parameters .* \\(masked: shapes kept\\)" prune ${cfg} --ratio 0.4 --mask-only --out ${OUT}/masked.safetensors)
file(READ ${OUT}/report.json report)
if(NOT report MATCHES "\"node\":\"model.0.conv\",\"channels\":32,\"removed\":\\[")
  message(FATAL_ERROR "report.json lacks model.0.conv's removed channels: ${report}")
endif()
