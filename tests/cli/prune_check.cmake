# `pdyolo prune`: a seeded yolov7-tiny loses 40 % of its channels; the pruned file then goes through
# info, detect, eval and bench with no config, and --mask-only keeps the shapes. Then the criteria
# that need data: taylor to a FLOPs target (with latency before and after), kd-taylor from another
# teacher (and refused from the model itself), and bn after sparsity training.
#   cmake -DPDYOLO=... -DSOURCE_DIR=... -DOUT=... -P prune_check.cmake
file(REMOVE_RECURSE ${OUT})
include(${CMAKE_CURRENT_LIST_DIR}/run_pdyolo.cmake)
set(cfg --cfg ${SOURCE_DIR}/cfg/training/yolov7-tiny.yaml --seed 3)
pdyolo_run("55 groups cut \\(l1, ratio 0.4, multiples of [0-9]+\\): 6,228,762 -> [0-9,]+ parameters" prune ${cfg} --ratio 0.4 --out ${OUT}/pruned.safetensors
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
# File sizes like for like: "before" is the size of the unpruned model's own file (as convert writes
# it), "after" the pruned file's.
pdyolo_run("-> .*unpruned.safetensors" convert ${cfg} --out ${OUT}/unpruned.safetensors)
file(SIZE ${OUT}/unpruned.safetensors unpruned_bytes)
file(SIZE ${OUT}/pruned.safetensors pruned_bytes)
if(NOT report MATCHES "\"before\":{[^}]*\"file_bytes\":${unpruned_bytes}[,}].*\"after\":{[^}]*\"file_bytes\":${pruned_bytes}}")
  message(FATAL_ERROR "report.json's file sizes are not ${unpruned_bytes} (unpruned) and ${pruned_bytes} (pruned): ${report}")
endif()

set(calib --data ${SOURCE_DIR}/data/sample --split train --calib-batches 2 --batch-size 2 --img-size 64 --workers 0
          --hyp ${SOURCE_DIR}/cfg/hyp/hyp.scratch.tiny.yaml --latency-runs 3)
pdyolo_run("target [0-9.e+-]+ reached at ratio 0\\.[0-9]+.*taylor, ratio 0\\.[0-9]+, multiples of [0-9]+\\): 6,228,762 -> [0-9,]+ parameters \\([0-9.]+%\\), [0-9.]+ -> [0-9.]+ GFLOPs at 64 \\((5[0-9]|60)\\.[0-9]%\\).*latency P50 at 64, 2 threads, planned executor: [0-9.]+ -> [0-9.]+ ms"
           prune ${cfg} --importance taylor --target-flops 0.6 ${calib} --out ${OUT}/taylor.safetensors --report ${OUT}/taylor.json)
file(READ ${OUT}/taylor.json report)
if(NOT report MATCHES "\"importance\":\"taylor\".*\"latency_p50_ms\":[0-9.]+.*\"after\":{\"params\":[0-9]+,\"gflops\":[0-9.]+,\"latency_p50_ms\":[0-9.]+")
  message(FATAL_ERROR "taylor.json lacks the sizes and latencies: ${report}")
endif()
pdyolo_run("nc=80" convert ${cfg} --out ${OUT}/student.safetensors)
pdyolo_run("nc=80" convert --cfg ${SOURCE_DIR}/cfg/training/yolov7-tiny.yaml --seed 4 --out ${OUT}/teacher.safetensors)
pdyolo_run("kd-taylor, ratio 0.3" prune --weights ${OUT}/student.safetensors --importance kd-taylor --teacher ${OUT}/teacher.safetensors
           --ratio 0.3 ${calib} --out ${OUT}/kd_taylor.safetensors)
execute_process(COMMAND ${PDYOLO} prune --weights ${OUT}/student.safetensors --importance kd-taylor --teacher ${OUT}/student.safetensors
                        ${calib} --out ${OUT}/self.safetensors RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_QUIET)
if(NOT rc EQUAL 1 OR NOT err MATCHES "student.safetensors: the teacher is the model being pruned")
  message(FATAL_ERROR "kd-taylor with the model as its own teacher: exit ${rc}, ${err}")
endif()
pdyolo_run("training" train ${cfg} --data ${SOURCE_DIR}/data/sample --split train --hyp ${SOURCE_DIR}/cfg/hyp/hyp.scratch.tiny.yaml
           --epochs 1 --batch-size 4 --img-size 64 --notest --no-progress --workers 0 --sparsity 1e-3 --sparsity-decay --out ${OUT}/slim)
pdyolo_run("\\(bn, ratio 0.3, multiples of [0-9]+\\)" prune --weights ${OUT}/slim/last.safetensors --importance bn --ratio 0.3 --latency-runs 0
           --out ${OUT}/slim_pruned.safetensors)
# Iterative prune → fine-tune: two steps to 60 % of the FLOPs; a run cut short after step 1 (its
# steps.csv row for step 2 lost) resumes and reaches the same models; a drop limit no step can meet
# stops after step 1 and keeps the unpruned model.
set(iterative prune ${cfg} --importance taylor --target-flops 0.6 --iterative-steps 2 --finetune-epochs 1 --val-split train
              --no-progress ${calib})
pdyolo_run("step 2: [0-9.]+% of the parameters, 5[0-9.]+% of the GFLOPs.*wrote .*iterative.safetensors \\(step 2"
           ${iterative} --out ${OUT}/iterative.safetensors)
file(STRINGS ${OUT}/iterative_steps/steps.csv complete)
list(SUBLIST complete 0 3 cut_short)
list(JOIN cut_short "\n" cut_short)
file(WRITE ${OUT}/iterative_steps/steps.csv "${cut_short}\n")
file(REMOVE ${OUT}/iterative_steps/step_2/model.safetensors)
pdyolo_run("step 2: " ${iterative} --out ${OUT}/iterative.safetensors)
file(STRINGS ${OUT}/iterative_steps/steps.csv resumed)
foreach(row 1 3)  # step, ratio, params, GFLOPs agree (latency and a random model's mAP need not)
  list(GET complete ${row} a)
  list(GET resumed ${row} b)
  string(REGEX MATCH "^[^,]+,[^,]+,[^,]+,[^,]+" a "${a}")
  string(REGEX MATCH "^[^,]+,[^,]+,[^,]+,[^,]+" b "${b}")
  if(NOT a STREQUAL b)
    message(FATAL_ERROR "resumed iterative pruning differs: '${a}' then '${b}'")
  endif()
endforeach()
pdyolo_run("step 1 lost more than -1 points of mAP@.5: stopped; keeping step 0.*\\(step 0: 6,228,762 parameters"
           ${iterative} --max-map-drop -1 --out ${OUT}/stopped.safetensors)
