#!/usr/bin/env bash
# The GPU checks this project owes (docs/BENCHMARKS.md, "GPU"): run on a CUDA machine from the
# repository root after `make test`-style setup (.venv with a CUDA build of torch; add
# `pip install "polyp-rt[gpu]"` for ONNX Runtime's CUDA/TensorRT providers and
# `pip install "polyp-rt[tensorrt]"` for TensorRT). Results go to out/gpu/.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
run() { echo "+ $*" | tee -a "$OUT/commands.txt"; "$@"; }

run "$BIN/polyp-rt" info --json > "$OUT/info.json"
# GPU tests: torch FP16 + CUDA graph vs FP32, the GPU frame path vs the CPU path, TensorRT if present
run "$BIN/pytest" -rs tests/engines tests/realtime/test_gpu_stage.py | tee "$OUT/pytest.txt"

# model only, all presets (random weights), torch FP32 / FP16 / FP16 + CUDA graph, ONNX Runtime, TensorRT
for variant in "" "--fp16" "--fp16 --cuda-graph"; do
  tag=$(echo "fp32 $variant" | tr -d ' -' )
  run "$BIN/polyp-rt" bench --presets cpu,fast,accurate --backends all --device cuda:0 $variant \
      --iterations 300 --warmup 50 --json > "$OUT/model_$tag.json"
done

# random-weight checkpoints of the fast and accurate presets (speed does not depend on weights)
"$BIN/python" - "$OUT" <<'PY'
import sys
from polyp_rt.engines.checkpoint import save_checkpoint
from polyp_rt.engines.models import contract_for, create_model, model_config
for preset in ("fast", "accurate"):
    conf = model_config(preset)
    save_checkpoint(f"{sys.argv[1]}/{preset}_random.pt", create_model(conf), contract_for(conf), {"note": "random weights"})
PY
# the accurate preset exported and verified on the GPU machine (FP32 and FP16 ONNX)
run "$BIN/polyp-rt" export --checkpoint "$OUT/accurate_random.pt" -o "$OUT/accurate.onnx" --overwrite
run "$BIN/polyp-rt" export --checkpoint "$OUT/accurate_random.pt" -o "$OUT/accurate_fp16.onnx" --fp16 --overwrite

# the pipeline at 1080p60: pre/postprocessing on the CPU ("before" the GPU frame path) and on
# the GPU ("after"), torch FP16 + CUDA graph
for preset in fast accurate; do
  for stages in cpu auto; do
    run "$BIN/polyp-rt" bench --pipeline --source "synthetic:1920x1080@60?loop=60" --model "$OUT/${preset}_random.pt" \
        --backend torch --device cuda:0 --fp16 --cuda-graph --stages "$stages" --frames 1800 --json \
        > "$OUT/pipeline_${preset}_${stages}.json"
  done
done
# a trained model (realistic masks), if one is given: MODEL=runs/x/best.pt bash scripts/gpu_checks.sh
if [ -n "${MODEL:-}" ]; then
  run "$BIN/polyp-rt" bench --model "$MODEL" --backends torch --device cuda:0 --fp16 --cuda-graph --json > "$OUT/model_trained.json"
  run "$BIN/polyp-rt" bench --pipeline --source "synthetic:1920x1080@60?loop=60" --model "$MODEL" \
      --backend torch --device cuda:0 --fp16 --cuda-graph --frames 1800 --json > "$OUT/pipeline_trained.json"
fi
echo "results in $OUT/"
