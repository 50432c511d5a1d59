# Sourced by the scripts that train candidates one after the other (compare_encoders.sh,
# pareto_train.sh): `candidate_run RUN TRAIN-FLAGS...` skips a finished run, resumes a stopped
# one, or starts it with the flags; a failed candidate does not stop the others. Needs $PRT.
candidate_run() {
  local run=$1 name
  name=$(basename "$run")
  shift
  if [ -f "$run/test_metrics.json" ]; then echo "$name: done"; return; fi
  if [ -f "$run/last.pt" ]; then
    "$PRT" train --resume "$run/last.pt" --workers 1 || echo "$name: failed"
  else
    "$PRT" train "$@" --workers 1 --out "$run" || echo "$name: failed"
  fi
}
