#!/usr/bin/env bash
# The two-stage training run that made the fixture checkpoint (reference.json, train_from_scratch),
# done with pdyolo: stage 1 trains yolov7-tiny from random initialisation on coco128-voc for 100
# epochs (hyp.scratch.tiny, mosaic and the other augmentations); stage 2 continues 150 epochs from
# the stage-1 weights with every augmentation off. 320x320, batch 16, 2 threads, evaluation on the
# same 128 images after each stage (--notest: only the last epoch of a stage is evaluated).
#   bench/train_two_stage.sh PDYOLO_BINARY OUT_DIR [SHARED_DIR]
set -euo pipefail
pdyolo=${1:?usage: train_two_stage.sh PDYOLO_BINARY OUT_DIR [SHARED_DIR]}
out=${2:?usage: train_two_stage.sh PDYOLO_BINARY OUT_DIR [SHARED_DIR]}
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${3:-$here/../shared}
export OMP_NUM_THREADS=2
common=(--cfg "$here/cfg/training/yolov7-tiny.yaml" --data "$shared/data/coco128-voc" --split train2017
        --batch-size 16 --img-size 320 --workers 2 --cache --notest --no-progress)
mkdir -p "$out"
start=$(date +%s)
"$pdyolo" train "${common[@]}" --hyp "$here/cfg/hyp/hyp.scratch.tiny.yaml" --epochs 100 --out "$out/stage1" \
  | tee "$out/stage1.log"
middle=$(date +%s)
"$pdyolo" train "${common[@]}" --hyp "$shared/fixtures/cfg/hyp/hyp.finetune.noaug.yaml" --epochs 150 \
  --weights "$out/stage1/last.safetensors" --out "$out/stage2" | tee "$out/stage2.log"
end=$(date +%s)
echo "wall seconds: stage1 $((middle - start)) stage2 $((end - middle))" | tee "$out/wall.txt"
