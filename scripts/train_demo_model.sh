#!/usr/bin/env bash
# How the bundled demo model (samples/polyp_cpu.onnx) is made; samples/README.md has its numbers.
#   1. the cpu preset trained from scratch on PolypGen train (val picks the best epoch);
#   2. fine-tuned on PolypGen train plus 600 synthetic scenes (`polyp-rt synth`), so that it
#      also outlines the synthetic polyps of the demo clip; val and test stay PolypGen's own.
# Usage: scripts/train_demo_model.sh POLYPGEN_DIR WORK_DIR [EPOCHS_1 EPOCHS_2]
# A CUDA GPU makes this minutes (it ran on an H100); DEVICE=cpu works, slowly. Stage 1 is
# skipped when WORK_DIR/base/best.pt exists. Then:
#   polyp-rt export --checkpoint WORK_DIR/mixed-run/best.pt -o samples/polyp_cpu.onnx
set -euo pipefail
DATA=$(realpath "$1") WORK=$2 EPOCHS_1=${3:-34} EPOCHS_2=${4:-30}
PRT=${PRT:-polyp-rt} DEVICE=${DEVICE:-cuda} WORKERS=${WORKERS:-8}
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
amp=$([ "$DEVICE" = cpu ] || echo --amp)

[ -f "$WORK/base/best.pt" ] || "$PRT" train --data "$DATA" --preset cpu --epochs "$EPOCHS_1" \
    --device "$DEVICE" $amp --workers "$WORKERS" --out "$WORK/base"

for seed in 1 2 3 4; do
  [ -d "$WORK/synthetic$seed" ] || "$PRT" synth --out "$WORK/synthetic$seed" --count 150 --size 320 --seed "$seed" &
done
wait

# train = PolypGen train + the synthetic scenes (links, prefixed so names stay unique)
rm -rf "$WORK/mixed"
mkdir -p "$WORK/mixed/train/images" "$WORK/mixed/train/masks"
for kind in images masks; do
  ln -s "$DATA/train/$kind"/* "$WORK/mixed/train/$kind/"
  for seed in 1 2 3 4; do
    for f in "$WORK/synthetic$seed/$kind"/*; do ln -s "$f" "$WORK/mixed/train/$kind/synthetic${seed}_${f##*/}"; done
  done
done
ln -s "$DATA/val" "$WORK/mixed/val"
ln -s "$DATA/test" "$WORK/mixed/test"

"$PRT" train --data "$WORK/mixed" --init "$WORK/base/best.pt" --epochs "$EPOCHS_2" --lr 5e-4 \
    --device "$DEVICE" $amp --workers "$WORKERS" --out "$WORK/mixed-run"
