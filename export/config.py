"""Configuration of `polyp-rt export` and `polyp-rt build` (light: no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from polyp_rt.core.options import option


@dataclass
class ExportConfig:
    checkpoint: Path | None = option(
        None, "checkpoint written by `polyp-rt train`", metavar="RUN/best.pt", required=True
    )
    output: Path | None = option(
        None, "ONNX file to write", flag=("-o", "--output"), metavar="model.onnx", required=True
    )
    opset: int = option(
        18, "ONNX opset (18 is what the torch exporter writes natively; lower ones are converted)"
    )
    fp16: bool = option(False, "store weights and I/O in FP16 (checked against FP32 by mask Dice)")
    dynamic_batch: bool = option(False, "allow any batch size N (default: fixed N=1)")
    simplify: bool = option(False, "simplify the graph with onnxslim or onnxsim if installed")


@dataclass
class BuildConfig:
    onnx: Path | None = option(None, "ONNX model from `polyp-rt export`", metavar="model.onnx", required=True)
    output: Path | None = option(
        None, "engine file to write", flag=("-o", "--output"), metavar="model.engine", required=True
    )
    fp16: bool = option(True, "FP16 kernels where faster")
    workspace_gb: float = option(4.0, "builder workspace memory limit, GiB")
    timing_cache: Path | None = option(
        None, "timing cache file, read if present and written back", metavar="FILE"
    )
    min_batch: int = option(1, "smallest batch the engine accepts")
    opt_batch: int = option(1, "batch size TensorRT tunes for")
    max_batch: int = option(4, "largest batch the engine accepts")
