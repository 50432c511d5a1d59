"""Configuration of `polyp-rt bench`, `info` and `eval` (light: no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from polyp_rt.core.options import as_in, option
from polyp_rt.evaluation.config import MetricsConfig
from polyp_rt.realtime.config import OverlayConfig, RunConfig
from polyp_rt.train.config import EvalConfig


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
    overwrite: bool = option(False, "replace an existing --plot file; without it one is refused")
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
    alert_min_frames: int = as_in(OverlayConfig, "alert_min_frames")
    alert_hold: int = as_in(OverlayConfig, "alert_hold")


@dataclass
class InfoConfig:
    model: Path | None = option(None, "also describe this model file", metavar="M")
    json: bool = option(False, "print one JSON object")


@dataclass
class EvalCommandConfig(EvalConfig):
    """`polyp-rt eval`: `EvalConfig` (a model on a data set, or mask folders) and, with --video or
    --record, a video scored as CADe systems are judged (cli/video_eval.py, docs/VIDEO_METRICS.md)."""

    video: Path | None = option(
        None,
        "score a video as CADe systems are judged (lesions found, time to first detection, false alarms "
        "per minute): run the pipeline over it headless and compare with --truth DIR",
        metavar="CLIP",
    )
    record: Path | None = option(
        None,
        "score a `polyp-rt batch` video's frames.jsonl (or its folder) against --truth DIR without "
        "running the model again",
        metavar="FILE",
    )
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    alert_min_frames: int = as_in(OverlayConfig, "alert_min_frames")
    alert_hold: int = as_in(OverlayConfig, "alert_hold")
    min_area: float = as_in(OverlayConfig, "min_area")
    smoothing: float = as_in(RunConfig, "smoothing")
    threads: int | None = as_in(RunConfig, "threads")
    gates: list[str] = option(
        [],
        "--video/--record: also score these alert gates, replayed over the masks, as MIN_FRAMES:HOLD",
        nargs="+",
        metavar="N:M",
    )
    plot: Path | None = option(
        None,
        "--video/--record: plot per-lesion sensitivity against false alarms per minute (.svg or .png)",
        metavar="FILE",
    )
    overwrite: bool = option(
        False, "--video/--record: replace an existing --plot file; without it one is refused"
    )

    def scores_a_video(self) -> bool:
        return bool(self.video or self.record)
