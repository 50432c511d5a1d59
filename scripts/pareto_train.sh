#!/usr/bin/env bash
# cpu-preset candidates trained the same way on the PraNet split's TrainDataset and PolypGen
# (+ synthetic scenes): same data, epochs, seed, machine, one after the other. Resumable: a finished
# run is skipped, a stopped one resumed. The validation Dice of each goes beside its INT8 time from
# scripts/pareto_timing.py into docs/TRAINING.md (the Pareto table).
#   bash scripts/pareto_train.sh SHARED_DATA WORK [EPOCHS]
# Results: WORK/pareto/NAME/metrics.jsonl (validation per epoch and data set) and test_metrics.json.
set -euo pipefail
DATA=$(realpath "$1") WORK=$2 EPOCHS=${3:-5}
PRT=${PRT:-polyp-rt}
read -r TRAINSET MIXED < <(PRT=$PRT bash "$(dirname "$0")/benchmark_data.sh" "$DATA" "$WORK" | tail -1)
OUT="$WORK/pareto"
mkdir -p "$OUT"
source "$(dirname "$0")/candidate_run.sh"
candidate() {  # NAME ENCODER SIZE DECODER [MORE FLAGS]
  candidate_run "$OUT/$1" --data "$TRAINSET" --data "$MIXED" --val-share 0.15 --test-share 0 \
    --preset cpu --encoder "$2" --size "$3" --decoder "$4" --encoder-weights imagenet \
    --epochs "$EPOCHS" --amp --seed 0 "${@:5}"
}
for spec in ${CANDIDATES:?set CANDIDATES, e.g. "lite0-192-slim lite0-224-slim"}; do
  IFS=- read -r enc size dec extra <<<"$spec"
  case $enc in lite0) encoder=timm-tf_efficientnet_lite0 ;; lite1) encoder=timm-tf_efficientnet_lite1 ;; esac
  case $dec in slim) widths=64,32,16,16,8 ;; slimmer) widths=32,16,16,8,8 ;; wide) widths=128,64,32,16,16 ;; esac
  case ${extra:-} in free3) more=(--polyp-free-repeats 3) ;; *) more=() ;; esac
  candidate "$spec" "$encoder" "$size" "$widths" "${more[@]}"
done
