"""Configuration of the live pipeline, `bench` and `info` (light: no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from polyp_rt.engines.factory import BACKENDS
from polyp_rt.engines.options import option

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
DEMO_MODEL = SAMPLES / "polyp_cpu.onnx"
DEMO_CLIP = SAMPLES / "demo.mp4"
BACKEND_CHOICES = BACKENDS


@dataclass
class OverlayConfig:
    mask_alpha: float = option(0.4, "opacity of the mask tint (0 = off)")
    color: str = option("0,255,0", "mask and contour colour as R,G,B")
    contours: bool = option(True, "draw polyp outlines")
    hud: bool = option(True, "draw fps, latency, backend and the polyp indicator")
    presence_on: int = option(
        3, "polyp indicator turns on after this many of the last --presence-window frames"
    )
    presence_window: int = option(5, "frames considered for turning the indicator on")
    presence_off: int = option(8, "indicator turns off after this many clear frames in a row")
    min_area: float = option(0.002, "mask area (fraction of the frame) that counts as a polyp")


@dataclass
class RunConfig:
    source: str | None = option(
        None,
        "video file, camera index or /dev/videoN, rtsp:// or http:// URL, image folder, or synthetic:WxH@FPS",
        metavar="SRC",
    )
    model: Path = option(DEMO_MODEL, "checkpoint, ONNX or TensorRT engine", metavar="M")
    backend: str = option("auto", "inference backend", choices=BACKEND_CHOICES)
    device: str | None = option(None, "cpu or cuda[:N] (default: cuda if available)")
    fp16: bool = option(False, "torch backend: FP16 on CUDA")
    cuda_graph: bool = option(False, "torch/TensorRT backends: capture a CUDA graph")
    threshold: float | None = option(None, "sigmoid threshold (default: the model's own)")
    smoothing: float = option(
        0.0, "temporal smoothing of the probability: weight of the previous frames (0 = off, e.g. 0.5)"
    )
    record: Path | None = option(None, "record the annotated video (.mp4 or .mkv)", metavar="OUT.mp4")
    masks_out: Path | None = option(None, "write one binary mask PNG per frame here", metavar="DIR")
    truth: Path | None = option(
        None, "ground-truth masks (000000.png, ...) to score the predicted masks against", metavar="DIR"
    )
    headless: bool = option(False, "no window")
    realtime: bool = option(False, "play a file at its own frame rate (default: as fast as possible)")
    max_frames: int | None = option(None, "stop after this many frames", metavar="N")
    stats_json: Path | None = option(
        None, "write latency statistics (and a histogram PNG beside it)", metavar="FILE"
    )
    width: int | None = option(None, "camera: requested width")
    height: int | None = option(None, "camera: requested height")
    fps: float | None = option(None, "camera: requested frame rate; synthetic: frame rate")
    fourcc: str | None = option(None, "camera: requested pixel format, e.g. MJPG or YUYV")
    queue_size: int = option(
        1, "frames waiting between threads (live sources drop the oldest; 1 = lowest latency)"
    )
    stall_timeout: float = option(2.0, "live source: seconds without a frame before reconnecting")
    reconnects: int = option(3, "live source: reconnect attempts before giving up")
    overlay: OverlayConfig = field(default_factory=OverlayConfig)


@dataclass
class BenchConfig:
    model: Path | None = option(None, "model to time (default: the bundled demo model)", metavar="M")
    presets: str | None = option(
        None, "instead of --model: time these presets with random weights, e.g. cpu,fast,accurate"
    )
    backends: str = option(
        "auto", "comma-separated: torch, onnxruntime[-cpu|-cuda|-tensorrt], tensorrt, or all"
    )
    device: str | None = option(None, "cpu or cuda[:N] (default: cuda if available)")
    batch: int = option(1, "batch size")
    size: int | None = option(None, "input size (default: the model's)")
    fp16: bool = option(False, "torch: FP16 on CUDA")
    cuda_graph: bool = option(False, "torch/TensorRT: CUDA graph")
    iterations: int = option(200, "timed iterations per backend")
    warmup: int = option(20, "untimed iterations first")
    json: bool = option(False, "print one JSON object on stdout instead of tables")
    plot: Path | None = option(None, "write a latency histogram and CDF PNG", metavar="FILE.png")
    pipeline: bool = option(False, "time the whole threaded pipeline instead of the model alone")
    source: str = option("synthetic:640x480@30", "--pipeline: the source", metavar="SRC")
    backend: str = option("auto", "--pipeline: the backend", choices=BACKEND_CHOICES)
    frames: int = option(300, "--pipeline: frames to run")
    stages: str = option(
        "auto",
        "--pipeline: where pre/postprocessing run: auto (on the GPU for CUDA engines) or cpu (to compare)",
        choices=("auto", "cpu"),
    )


@dataclass
class InfoConfig:
    model: Path | None = option(None, "also describe this model file", metavar="M")
    json: bool = option(False, "print one JSON object")
