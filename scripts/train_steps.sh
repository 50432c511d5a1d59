# Sourced by the training scripts: one resumable training step on the benchmark data.
# train_step RUN EPOCHS [train args...]: a new run in RUN with the benchmark data and splits
# (TRAINSET, MIXED from scripts/benchmark_data.sh) and the given arguments, or, where RUN holds
# one, its continuation to EPOCHS; nothing when it has them. Uses PRT, DEVICE and WORKERS.
train_step() {
  local run=$1 epochs=$2
  shift 2
  if [ ! -f "$run/last.pt" ]; then
    "$PRT" train --data "$TRAINSET" --data "$MIXED" --val-share 0.15 --test-share 0 "$@" \
      --epochs "$epochs" --workers "$WORKERS" --device "$DEVICE" --out "$run"
  elif [ "$(wc -l <"$run/metrics.jsonl")" -lt "$epochs" ]; then
    "$PRT" train --resume "$run/last.pt" --epochs "$epochs" --workers "$WORKERS" --device "$DEVICE"
  fi
}
