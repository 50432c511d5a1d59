"""Configuration of `polyp-rt export` and `polyp-rt build` (light: no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from polyp_rt.core.options import option


@dataclass
class ExportConfig:
    """`polyp-rt export`: checkpoint -> verified ONNX."""

    checkpoint: Path | None = option(
        None,
        "checkpoint written by `polyp-rt train` (refused: NaN weights, a malformed model contract, a "
        "pickle that carries code)",
        metavar="RUN/best.pt",
        required=True,
    )
    output: Path | None = option(
        None, "ONNX file to write", flag=("-o", "--output"), metavar="model.onnx", required=True
    )
    opset: int = option(
        18,
        "ONNX opset (18 is what the torch exporter writes natively; others are converted, down to 16)",
        low=16,
    )
    fp16: bool = option(
        False,
        "store weights and I/O in FP16 (checked against FP32 by mask Dice; fails where NaN appears or "
        "neither marks a pixel)",
    )
    dynamic_batch: bool = option(False, "allow any batch size N (default: fixed N=1)")
    simplify: bool = option(False, "simplify the graph with onnxslim or onnxsim if installed")
    overwrite: bool = option(False, "replace an existing --output file; without it one is refused")


@dataclass
class BuildConfig:
    """`polyp-rt build`: ONNX -> TensorRT engine and its sidecar."""

    onnx: Path | None = option(None, "ONNX model from `polyp-rt export`", metavar="model.onnx", required=True)
    output: Path | None = option(
        None, "engine file to write", flag=("-o", "--output"), metavar="model.engine", required=True
    )
    fp16: bool = option(True, "FP16 kernels where faster")
    workspace_gb: float = option(4.0, "builder workspace memory limit, GiB", low=0, low_open=True)
    timing_cache: Path | None = option(
        None, "timing cache file, read if present and written back", metavar="FILE"
    )
    min_batch: int = option(1, "smallest batch the engine accepts", low=1)
    opt_batch: int = option(1, "batch size TensorRT tunes for", low=1)
    max_batch: int = option(4, "largest batch the engine accepts", low=1)
    overwrite: bool = option(
        False, "replace an existing --output engine and its sidecar; without it one is refused"
    )


@dataclass
class QuantizeConfig:
    """`polyp-rt quantize`: FP32 ONNX -> verified INT8 ONNX."""

    onnx: Path | None = option(
        None,
        "FP32 ONNX model from `polyp-rt export` (refused if its contract is malformed or its logits NaN)",
        metavar="model.onnx",
        required=True,
    )
    output: Path | None = option(
        None, "INT8 ONNX file to write", flag=("-o", "--output"), metavar="model_int8.onnx", required=True
    )
    calibrate: Path | None = option(
        None,
        "real images to calibrate on and verify with: a data folder (images/ + masks/, or train/val/test: "
        "train calibrates, val verifies) or a folder of images",
        metavar="DIR",
        required=True,
    )
    images: int = option(200, "calibration images", low=1)
    verify_images: int = option(100, "held-out images the INT8 masks are checked on", low=1)
    min_dice: float = option(
        0.98,
        "least Dice of INT8 against FP32 masks over the held-out pixels (fails too where neither model "
        "marks a pixel, or either gives NaN)",
        low=0,
        high=1,
        low_open=True,
    )
    seed: int = option(0, "seed for choosing the images", low=0)
    json: bool = option(False, "print the verification report as one JSON object")
    overwrite: bool = option(False, "replace an existing --output file; without it one is refused")
