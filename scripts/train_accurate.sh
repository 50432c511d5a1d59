#!/usr/bin/env bash
# The `accurate` preset (EfficientNet-Lite2 UNet++ at 352 px, wide decoder) on a CUDA GPU, on the
# same data and splits as the bundled model (scripts/benchmark_data.sh), then exported to ONNX.
# Resumable: rerun it and each step continues or is skipped. docs/TRAINING.md has its numbers
# (24 epochs on one H200: about 6 minutes of epochs).
# Usage: scripts/train_accurate.sh SHARED_DATA WORK [EPOCHS]
set -euo pipefail
DATA=$(realpath "$1") WORK=$2 EPOCHS=${3:-24}
PRT=${PRT:-polyp-rt} DEVICE=${DEVICE:-cuda} WORKERS=${WORKERS:-6}
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
read -r TRAINSET MIXED < <(PRT=$PRT bash "$(dirname "$0")/benchmark_data.sh" "$DATA" "$WORK" | tail -1)
source "$(dirname "$0")/train_steps.sh"
RUN="$WORK/accurate"
train_step "$RUN" "$EPOCHS" --preset accurate --encoder-weights imagenet --polyp-free-repeats 3 \
  --batch-size 16 --amp --seed 0
[ -f "$WORK/polyp_accurate.onnx" ] || "$PRT" export --checkpoint "$RUN/best.pt" -o "$WORK/polyp_accurate.onnx"
echo "made $WORK/polyp_accurate.onnx (on a GPU: polyp-rt build --onnx $WORK/polyp_accurate.onnx -o $WORK/polyp_accurate.engine for TensorRT FP16)"
