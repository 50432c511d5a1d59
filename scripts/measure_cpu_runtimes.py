"""CPU runtimes side by side: ONNX Runtime and OpenVINO, FP32 and INT8, in one process.

    python scripts/measure_cpu_runtimes.py --calibrate ../shared/data/polypgen

makes the INT8 file with `polyp_rt.export.int8.quantize_int8` (calibrated on train/,
verified on val/; pass --int8 FILE to reuse one), then times batch 1 on one real
preprocessed image: a warm-up, then rounds of 10 calls per engine in turn until each has
--iterations, so a background load falls on every engine alike. Prints p50/p90 and each
engine's speed-up over ONNX Runtime FP32, and, on the held-out images, each engine's mask
Dice against ONNX Runtime FP32 (all pixels) and its data-set Dice against the truth.
Writes the numbers as JSON beside the INT8 file (runs/cpu-runtimes/ by default).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from polyp_rt.cli.info import cpu_model
from polyp_rt.engines.backends.onnxruntime_backend import OnnxRuntimeEngine
from polyp_rt.engines.backends.openvino_backend import OpenVinoEngine
from polyp_rt.engines.base import Engine
from polyp_rt.engines.imaging import mask_at, preprocess
from polyp_rt.export.config import QuantizeConfig
from polyp_rt.export.int8 import calibration_split, quantize_int8
from polyp_rt.train.data import read_mask, read_rgb
from polyp_rt.train.metrics import MetricSet

ROUND = 10


def time_engines(
    engines: dict[str, Engine], x: np.ndarray, iterations: int, warmup: int
) -> dict[str, list[float]]:
    for engine in engines.values():
        for _ in range(warmup):
            engine.infer(x)
    times: dict[str, list[float]] = {name: [] for name in engines}
    while min(len(t) for t in times.values()) < iterations:
        for name, engine in engines.items():
            for _ in range(ROUND):
                start = time.perf_counter()
                engine.infer(x)
                times[name].append(time.perf_counter() - start)
    return times


def accuracy(
    engines: dict[str, Engine], held_out: list[tuple[Path, Path | None]], reference: str
) -> dict[str, dict]:
    """Per engine: mask Dice against the reference engine over all pixels, data-set Dice against the truth."""
    contract = engines[reference].contract
    overlap = dict.fromkeys(engines, 0)
    marked = dict.fromkeys(engines, 0)
    truth = {name: MetricSet() for name in engines}
    for image, mask_path in held_out:
        rgb = read_rgb(image)
        h, w = rgb.shape[:2]
        x = preprocess(rgb, contract)[None]
        masks = {n: mask_at(e.infer(x)[0], h, w, contract.threshold).astype(bool) for n, e in engines.items()}
        for name, mask in masks.items():
            overlap[name] += 2 * int(np.count_nonzero(mask & masks[reference]))
            marked[name] += int(np.count_nonzero(mask)) + int(np.count_nonzero(masks[reference]))
            if mask_path is not None:
                truth[name].add(mask, read_mask(mask_path))
    return {
        name: {
            "mask_dice_vs_reference": overlap[name] / marked[name] if marked[name] else 1.0,
            "dataset_dice": float(truth[name].summary()["dice"]) if truth[name].per_image else None,
        }
        for name in engines
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=Path("samples/polyp_cpu.onnx"), help="FP32 ONNX file")
    parser.add_argument(
        "--calibrate", type=Path, required=True, help="data folder (train/val/test or images/)"
    )
    parser.add_argument("--int8", type=Path, help="an INT8 file made before (skips quantisation)")
    parser.add_argument("--out", type=Path, default=Path("runs/cpu-runtimes"))
    parser.add_argument("--images", type=int, default=200, help="calibration images")
    parser.add_argument("--verify-images", type=int, default=150, help="held-out images")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument(
        "--threads", type=int, default=None, help="intra-op threads (default: the runtimes' own)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("onnxruntime", "root"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    args.out.mkdir(parents=True, exist_ok=True)
    int8_path = args.int8 or args.out / f"{args.model.stem}_int8.onnx"
    report = None
    if args.int8 is None:
        report = quantize_int8(
            QuantizeConfig(
                onnx=args.model,
                output=int8_path,
                calibrate=args.calibrate,
                images=args.images,
                verify_images=args.verify_images,
            )
        )
        print(
            f"INT8: {report.how}; {report.bytes / 1e6:.1f} MB (FP32 {report.fp32_bytes / 1e6:.1f} MB), {report.seconds:.0f} s"
        )
        print(
            f"  masks vs FP32 (ONNX Runtime): Dice {report.mask_dice:.4f} over all pixels, "
            f"per image mean {report.mask_dice_mean:.4f}, min {report.mask_dice_min:.3f}"
        )
        if report.dataset_dice_fp32 is not None and report.dataset_dice_int8 is not None:
            print(
                f"  data-set Dice against the truth: FP32 {report.dataset_dice_fp32:.4f}, "
                f"INT8 {report.dataset_dice_int8:.4f} (drop {report.dataset_dice_drop:+.4f})"
            )

    engines: dict[str, Engine] = {
        "onnxruntime fp32": OnnxRuntimeEngine(args.model, "cpu", threads=args.threads),
        "onnxruntime int8": OnnxRuntimeEngine(int8_path, "cpu", threads=args.threads),
        "openvino fp32": OpenVinoEngine(args.model, threads=args.threads),
        "openvino int8": OpenVinoEngine(int8_path, threads=args.threads),
    }
    split = calibration_split(args.calibrate, args.images, args.verify_images)
    contract = engines["onnxruntime fp32"].contract
    x = preprocess(read_rgb(split.verification[0][0]), contract)[None]
    times = time_engines(engines, x, args.iterations, args.warmup)
    agree = accuracy(engines, split.verification, "onnxruntime fp32")

    base = float(np.median(times["onnxruntime fp32"]))
    print(
        f"\n{cpu_model()}, {len(os.sched_getaffinity(0))} cores, load average {os.getloadavg()[0]:.2f}; "
        f"batch 1, {contract.height}x{contract.width}, {args.iterations} iterations after {args.warmup} warm-up"
    )
    print(
        f"{'engine':18s} {'p50 ms':>7s} {'p90 ms':>7s} {'vs ORT FP32':>11s} {'Dice vs FP32':>12s} {'data-set Dice':>13s}  provider"
    )
    rows = []
    for name, engine in engines.items():
        t = np.asarray(times[name][: args.iterations]) * 1e3
        p50, p90 = float(np.percentile(t, 50)), float(np.percentile(t, 90))
        a = agree[name]
        rows.append(
            {
                "engine": name,
                "provider": engine.provider,
                "p50_ms": p50,
                "p90_ms": p90,
                "speedup": base * 1e3 / p50,
                **a,
            }
        )
        truth = f"{a['dataset_dice']:.4f}" if a["dataset_dice"] is not None else "-"
        print(
            f"{name:18s} {p50:7.2f} {p90:7.2f} {base * 1e3 / p50:10.2f}x {a['mask_dice_vs_reference']:12.4f} "
            f"{truth:>13s}  {engine.provider}"
        )
    for engine in engines.values():
        engine.close()
    result = {
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)),
        "model": str(args.model),
        "int8": str(int8_path),
        "held_out": split.how,
        "int8_report": report.to_json() if report else None,
        "engines": rows,
    }
    path = int8_path.with_suffix(".json")
    path.write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
