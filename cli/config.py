"""Configuration of `polyp-rt bench` and `polyp-rt info` (light: no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from polyp_rt.core.options import option


@dataclass
class BenchConfig:
    model: list[Path] = option(
        [],
        "models to time, side by side (default: the bundled model: INT8 on a CPU, FP32 on a GPU)",
        metavar="M",
        nargs="+",
    )
    presets: str | None = option(
        None, "instead of --model: time these presets with random weights, e.g. cpu,fast,accurate"
    )
    backends: str = option(
        "auto",
        "comma-separated backends (`polyp-rt info` lists them, e.g. onnxruntime,openvino), or all",
    )
    device: str | None = option(None, "cpu or cuda[:N] (default: each backend's GPU if it has one here)")
    batch: int = option(1, "batch size", low=1)
    size: int | None = option(None, "input size (default: the model's)", low=32)
    fp16: bool = option(False, "torch: FP16 on CUDA")
    cuda_graph: bool = option(False, "torch/TensorRT: CUDA graph")
    iterations: int = option(200, "timed iterations per backend", low=1)
    warmup: int = option(20, "untimed iterations first", low=0)
    json: bool = option(False, "print one JSON object on stdout instead of tables")
    plot: Path | None = option(None, "write a latency histogram and CDF PNG", metavar="FILE.png")
    pipeline: bool = option(False, "time the whole threaded pipeline instead of the model alone")
    source: str = option("synthetic:640x480@30", "--pipeline: the source", metavar="SRC")
    backend: str = option("auto", "--pipeline: the backend")
    frames: int = option(300, "--pipeline: frames to run", low=1)
    stages: str = option(
        "auto",
        "--pipeline: where pre/postprocessing run: auto (on the GPU for CUDA engines) or cpu (to compare)",
        choices=("auto", "cpu"),
    )
    display: str = option(
        "auto",
        "--pipeline: synced (each frame waits for its mask) or passthrough (the video never waits); "
        "auto: as `polyp-rt run` picks",
        choices=("auto", "synced", "passthrough"),
    )
    inference: str = option(
        "auto",
        "--pipeline: latency (one request) or throughput (two in flight); auto: as `polyp-rt run` picks",
        choices=("auto", "latency", "throughput"),
    )


@dataclass
class InfoConfig:
    model: Path | None = option(None, "also describe this model file", metavar="M")
    json: bool = option(False, "print one JSON object")
