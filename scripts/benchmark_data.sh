#!/usr/bin/env bash
# The training data of the bundled models, laid out once in WORK (links, no copies):
#   WORK/polypgen-synth/   PolypGen's train split plus 400 synthetic scenes (`polyp-rt synth`,
#                          seeds 1-4, so the model also outlines the demo clip's synthetic polyps);
#                          val/ and test/ are PolypGen's own, untouched
# The PraNet split's TrainDataset is used as it is (a seeded validation share, no test share: its
# test sets live in TestDataset/).
#   bash scripts/benchmark_data.sh SHARED_DATA WORK     (SHARED_DATA: the folder holding polypgen/ and pranet/)
set -euo pipefail
DATA=$(realpath "$1") WORK=$2
PRT=${PRT:-polyp-rt}
for need in pranet/TrainDataset polypgen/train polypgen/val polypgen/test; do
  [ -d "$DATA/$need" ] || { echo "error: $DATA/$need not found: pass the folder that holds pranet/ and polypgen/" >&2; exit 2; }
done
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
for seed in 1 2 3 4; do
  [ -d "$WORK/synthetic$seed" ] || "$PRT" synth --out "$WORK/synthetic$seed" --count 100 --size 320 --seed "$seed"
done
MIXED="$WORK/polypgen-synth"
if [ ! -d "$MIXED" ]; then
  mkdir -p "$MIXED/train/images" "$MIXED/train/masks"
  for kind in images masks; do
    ln -s "$DATA/polypgen/train/$kind"/* "$MIXED/train/$kind/"
    for seed in 1 2 3 4; do
      for f in "$WORK/synthetic$seed/$kind"/*; do ln -s "$f" "$MIXED/train/$kind/synthetic${seed}_${f##*/}"; done
    done
  done
  ln -s "$DATA/polypgen/val" "$MIXED/val"
  ln -s "$DATA/polypgen/test" "$MIXED/test"
fi
echo "$DATA/pranet/TrainDataset $MIXED"
