"""Model-only CPU time of cpu-preset candidates: OpenVINO INT8 (and FP32), batch 1, in one process.

    python scripts/pareto_timing.py --calibrate ../shared/data/polypgen --out runs/pareto-timing

For each candidate (encoder x input size x decoder widths) it builds the UNet++ (ImageNet
encoder weights, untrained decoder: the time of a convolution does not depend on its weights),
exports it to ONNX, quantises it to INT8 (calibrated on 64 real images, no verification gate:
the masks of an untrained decoder mean nothing) and then times every candidate's OpenVINO
engine in interleaved rounds of 10 calls, so a background load falls on all of them alike.
The bundled model (samples/polyp_cpu_int8.onnx) is timed in the same rounds as the reference.
Writes OUT/timing.json; files already made are reused, so a rerun only times.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ENCODERS = {"lite0": "timm-tf_efficientnet_lite0", "lite1": "timm-tf_efficientnet_lite1"}
DECODERS = {
    "slim": (64, 32, 16, 16, 8),
    "slimmer": (32, 16, 16, 8, 8),
    "wide": (128, 64, 32, 16, 16),
}
SIZES = (160, 192, 224, 256)
ROUND = 10


def candidates() -> list[tuple[str, str, int, tuple[int, ...]]]:
    return [
        (f"{e}-{s}-{d}", encoder, s, widths)
        for e, encoder in ENCODERS.items()
        for s in SIZES
        for d, widths in DECODERS.items()
    ]


def make_files(out: Path, calibrate: Path) -> dict[str, Path]:
    from polyp_rt.engines.checkpoint import save_checkpoint
    from polyp_rt.engines.models import contract_for, create_model, model_config
    from polyp_rt.export.config import ExportConfig, QuantizeConfig
    from polyp_rt.export.int8 import quantize_int8
    from polyp_rt.export.onnx_export import export_onnx

    files: dict[str, Path] = {}
    for name, encoder, size, widths in candidates():
        int8 = out / f"{name}_int8.onnx"
        files[name] = int8
        if int8.is_file():
            continue
        mconf = replace(model_config("cpu", encoder, size, "imagenet"), decoder_channels=widths)
        model = create_model(mconf)
        ckpt, onnx_path = out / f"{name}.pt", out / f"{name}.onnx"
        save_checkpoint(ckpt, model, contract_for(mconf), {"purpose": "timing only"})
        export_onnx(ExportConfig(checkpoint=ckpt, output=onnx_path))
        quantize_int8(
            QuantizeConfig(
                onnx=onnx_path, output=int8, calibrate=calibrate, images=64, verify_images=8, min_dice=0.0
            )
        )
        print(f"made {int8}", flush=True)
    return files


def time_all(files: dict[str, Path], iterations: int) -> dict[str, dict[str, float]]:
    from polyp_rt.engines.backends.openvino_backend import OpenVinoEngine

    engines = {name: OpenVinoEngine(path) for name, path in files.items()}
    inputs = {
        name: np.random.default_rng(0)
        .standard_normal((1, 3, e.contract.height, e.contract.width))
        .astype(np.float32)
        for name, e in engines.items()
    }
    for name, engine in engines.items():
        for _ in range(20):
            engine.infer(inputs[name])
    samples: dict[str, list[float]] = {name: [] for name in engines}
    while min(len(s) for s in samples.values()) < iterations:
        for name, engine in engines.items():
            for _ in range(ROUND):
                t0 = time.perf_counter()
                engine.infer(inputs[name])
                samples[name].append((time.perf_counter() - t0) * 1000)
    return {
        name: {
            "p50_ms": float(np.percentile(s, 50)),
            "p90_ms": float(np.percentile(s, 90)),
            "threads": engines[name].threads,
        }
        for name, s in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calibrate", type=Path, required=True, help="data folder for INT8 calibration")
    parser.add_argument("--out", type=Path, default=Path("runs/pareto-timing"))
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--only", nargs="+", help="time only these candidates (and the bundled model)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    files = make_files(args.out, args.calibrate)
    if args.only:
        files = {name: path for name, path in files.items() if name in args.only}
    files["bundled (lite0-224-slim, trained)"] = Path(__file__).parents[1] / "samples" / "polyp_cpu_int8.onnx"
    result = time_all(files, args.iterations)
    out = args.out / ("timing-only.json" if args.only else "timing.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    for name, r in sorted(result.items(), key=lambda kv: kv[1]["p50_ms"]):
        print(f"{name:40s} p50 {r['p50_ms']:6.2f} ms  p90 {r['p90_ms']:6.2f} ms")


if __name__ == "__main__":
    main()
