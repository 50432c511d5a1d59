#!/usr/bin/env bash
# Encoder candidates for the presets, trained the same way on PolypGen (same data, epochs, seed,
# machine, the loss bce-dice they were measured with; the last candidate the per-image loss),
# one after the other. Resumable: a finished run is skipped, a stopped one resumed.
#   bash scripts/compare_encoders.sh [DATA] [OUT] [EPOCHS]
# Results: OUT/NAME/test_metrics.json (PolypGen test, full size) and metrics.jsonl (val per epoch).
set -euo pipefail
DATA=${1:-../shared/data/polypgen}
OUT=${2:-runs/compare}
EPOCHS=${3:-6}
BIN=${BIN:-.venv/bin}
mkdir -p "$OUT"
PRT=${PRT:-$BIN/polyp-rt}
source "$(dirname "$0")/candidate_run.sh"
candidate() {  # NAME ENCODER SIZE WEIGHTS [MORE FLAGS]
  candidate_run "$OUT/$1" --data "$DATA" --preset cpu --encoder "$2" --size "$3" --encoder-weights "$4" \
    --epochs "$EPOCHS" --seed 0 --loss bce-dice "${@:5}"
}
candidate lite0-224-imagenet timm-tf_efficientnet_lite0 224 imagenet
candidate lite0-224-random timm-tf_efficientnet_lite0 224 none
candidate lite0-256-imagenet timm-tf_efficientnet_lite0 256 imagenet
candidate mobilenetv2-256-random mobilenet_v2 256 none
candidate lite1-256-imagenet timm-tf_efficientnet_lite1 256 imagenet
candidate lite2-256-imagenet timm-tf_efficientnet_lite2 256 imagenet
# bfloat16 on the CPU (--amp), checked against the float32 run of the same candidate
candidate lite0-224-imagenet-bf16 timm-tf_efficientnet_lite0 224 imagenet --amp
# a larger input and the wide decoder (the former accurate preset's)
candidate lite2-352-wide-imagenet timm-tf_efficientnet_lite2 352 imagenet --decoder 256,128,64,32,16 --amp
candidate lite2-256-imagedice-bf16 timm-tf_efficientnet_lite2 256 imagenet --amp --loss bce-image-dice
