#!/usr/bin/env bash
# What a few CPU hours give in place of the `accurate` preset: the bundled model's best checkpoint
# (scripts/train_bundled_model.sh) fine-tuned at 256 px on the same data and splits (the `fast`
# architecture: EfficientNet-Lite1 UNet++, slim decoder), exported and quantised to INT8.
# Resumable: rerun it and each step continues or is skipped. docs/TRAINING.md has its numbers.
# Usage: scripts/train_fine_tuned_256.sh SHARED_DATA WORK [EPOCHS]   (WORK: train_bundled_model.sh's)
set -euo pipefail
DATA=$(realpath "$1") WORK=$2 EPOCHS=${3:-5}
PRT=${PRT:-polyp-rt} DEVICE=${DEVICE:-cpu} WORKERS=${WORKERS:-1}
WORK=$(realpath "$WORK")
if [ ! -f "$WORK/cpu/best.pt" ]; then
  echo "$WORK/cpu/best.pt not found: run scripts/train_bundled_model.sh $1 $2 first (it is the start)" >&2
  exit 2
fi
read -r TRAINSET MIXED < <(PRT=$PRT bash "$(dirname "$0")/benchmark_data.sh" "$DATA" "$WORK" | tail -1)
source "$(dirname "$0")/train_steps.sh"
RUN="$WORK/fast-256"
train_step "$RUN" "$EPOCHS" --init "$WORK/cpu/best.pt" --size 256 --lr 5e-4 --warmup-epochs 0.5 \
  --polyp-free-repeats 3 --amp --seed 0
[ -f "$WORK/polyp_fast.onnx" ] || "$PRT" export --checkpoint "$RUN/best.pt" -o "$WORK/polyp_fast.onnx"
[ -f "$WORK/polyp_fast_int8.onnx" ] || "$PRT" quantize --onnx "$WORK/polyp_fast.onnx" --calibrate "$MIXED" \
    --images 400 -o "$WORK/polyp_fast_int8.onnx"
echo "made $WORK/polyp_fast.onnx and $WORK/polyp_fast_int8.onnx"
