#!/usr/bin/env bash
# The bundled cpu model: EfficientNet-Lite0 UNet++ at 224 from ImageNet weights, trained on
# PolypGen train (selected on val), then exported and verified. Resumable: rerun to continue.
#   bash scripts/train_cpu_model.sh [DATA] [RUN] [EPOCHS]
set -euo pipefail
DATA=${1:-../shared/data/polypgen}
RUN=${2:-runs/cpu-lite0-224}
EPOCHS=${3:-24}
BIN=${BIN:-.venv/bin}
if [ ! -f "$RUN/test_metrics.json" ]; then
  if [ -f "$RUN/last.pt" ]; then
    "$BIN/polyp-rt" train --resume "$RUN/last.pt" --workers 1
  else
    "$BIN/polyp-rt" train --data "$DATA" --preset cpu --encoder timm-tf_efficientnet_lite0 --size 224 \
      --encoder-weights imagenet --epochs "$EPOCHS" --patience 6 --seed 0 --workers 1 --out "$RUN"
  fi
fi
