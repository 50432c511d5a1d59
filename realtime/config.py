"""Configuration of the live pipeline (light: no heavy imports).

`RunConfig` is what `polyp-rt run` takes, flag for flag, and what `compose()` wires a
pipeline from; `bench --pipeline`, `batch` and the tests build one too. Each default is
written once, here.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from polyp_rt.core.options import option

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
DEMO_MODEL = SAMPLES / "polyp_cpu.onnx"
DEMO_MODEL_INT8 = SAMPLES / "polyp_cpu_int8.onnx"  # verified against DEMO_MODEL (samples/README.md)
DEMO_CLIP = SAMPLES / "demo.mp4"
BUNDLED = "(default: the bundled model: INT8 on a CPU, FP32 on a GPU)"
# what --source takes, for people (its grammar is realtime/sources/spec.py)
SOURCE_FORMS = (
    "a video file, an image folder, a camera index (0) or /dev/videoN, an rtsp:// or http:// URL, "
    "or synthetic:WxH@FPS (e.g. synthetic:640x480@30)"
)


def bundled_model_for(backend: str, device: str | None) -> Path:
    """The bundled model to run when no --model is given: the INT8 file where the run is on a CPU
    (3-4x faster there), the FP32 one on a GPU."""
    from polyp_rt.engines.registry import choose, settle_device

    if not DEMO_MODEL_INT8.is_file():
        return DEMO_MODEL
    cls, _ = choose(DEMO_MODEL, backend, device)
    return DEMO_MODEL_INT8 if settle_device(device, cls) == "cpu" else DEMO_MODEL


def model_to_run(model: Path | None, backend: str, device: str | None) -> Path:
    """The model a command runs: `model` where one is given, else the bundled model for the
    device (`bundled_model_for`). `run`, `bench`, `batch` and `eval` all choose here."""
    return Path(model) if model is not None else bundled_model_for(backend, device)


@dataclass
class OverlayConfig:
    mask_alpha: float = option(0.4, "opacity of the mask tint (0 = off)", low=0.0, high=1.0)
    color: str = option("0,255,0", "mask and contour colour as R,G,B")
    contours: bool = option(True, "draw polyp outlines")
    hud: bool = option(True, "draw fps, latency, backend and the polyp indicator")
    presence_on: int = option(
        3, "polyp indicator turns on after this many of the last --presence-window frames", low=1
    )
    presence_window: int = option(5, "frames considered for turning the indicator on", low=1)
    presence_off: int = option(8, "indicator turns off after this many clear frames in a row", low=1)
    min_area: float = option(
        0.002, "mask area (fraction of the frame) that counts as a polyp", low=0.0, high=1.0, low_open=True
    )
    alert_min_frames: int = option(
        3,
        "draw a region of the mask once it has been found this many frames in a row (1 with --alert-hold "
        "0: every mask; the default is measured in docs/VIDEO_METRICS.md)",
        low=1,
        high=1000,
        metavar="N",
    )
    alert_hold: int = option(
        2,
        "a drawn region that is lost stays drawn this many frames (bridges dropouts)",
        low=0,
        high=1000,
        metavar="M",
    )


@dataclass
class CaptureConfig:
    """How a source is opened and kept alive."""

    realtime: bool = option(False, "play a file at its own frame rate (default: as fast as possible)")
    width: int | None = option(None, "camera: requested width", low=1)
    height: int | None = option(None, "camera: requested height", low=1)
    fps: float | None = option(
        None, "camera: requested frame rate; synthetic: frame rate", low=0, high=1000, low_open=True
    )
    fourcc: str | None = option(None, "camera: requested pixel format, e.g. MJPG or YUYV")
    stall_timeout: float = option(
        2.0, "live source: seconds without a frame before reconnecting", low=0, high=3600, low_open=True
    )
    reconnects: int = option(3, "live source: reconnect attempts before giving up", low=0)


@dataclass
class RunConfig:
    source: str | None = option(
        None,
        f"what to play: {SOURCE_FORMS}; a URL's password or token opens the stream and is shown nowhere",
        metavar="SRC",
    )
    model: Path | None = option(
        None,
        "checkpoint, ONNX or TensorRT engine (refused if its contract is malformed or disagrees with "
        f"its graph, or it gives NaN logits on a plain frame) {BUNDLED}",
        metavar="M",
    )
    backend: str = option("auto", "inference backend (`polyp-rt info` lists them)")
    device: str | None = option(None, "cpu or cuda[:N] (default: the backend's GPU if it has one here)")
    fp16: bool = option(False, "torch backend: FP16 on CUDA")
    cuda_graph: bool = option(False, "torch/TensorRT backends: capture a CUDA graph")
    threshold: float | None = option(
        None, "sigmoid threshold (default: the model's own)", low=0.0, high=1.0, low_open=True, high_open=True
    )
    smoothing: float = option(
        0.0,
        "temporal smoothing of the probability: weight of the previous frames (0 = off, e.g. 0.5)",
        low=0.0,
        high=1.0,
        high_open=True,
    )
    threads: int | None = option(
        None,
        "inference threads of a CPU runtime (default: every core; see docs/BENCHMARKS.md)",
        low=1,
        high=1024,
    )
    stages: str = option(
        "auto",
        "where pre/postprocessing run: auto (on the GPU for CUDA engines) or cpu (to compare)",
        choices=("auto", "cpu"),
    )
    record: Path | None = option(
        None,
        "record the annotated video (.mp4 or .mkv); an existing file needs --overwrite",
        metavar="OUT.mp4",
    )
    masks_out: Path | None = option(None, "write one binary mask PNG per frame here", metavar="DIR")
    truth: Path | None = option(
        None, "ground-truth masks (000000.png, ...) to score the predicted masks against", metavar="DIR"
    )
    stats_json: Path | None = option(
        None,
        "write latency statistics (and a histogram PNG beside it); existing ones need --overwrite",
        metavar="FILE",
    )
    overwrite: bool = option(
        False,
        "replace earlier outputs: a --record or --stats-json file that exists (and the histogram "
        "beside it), masks in a --masks-out folder that holds files; without it they are refused",
    )
    headless: bool = option(False, "no window")
    serve: str | None = option(
        None,
        "also show the live view in browsers at HOST:PORT (e.g. 127.0.0.1:8080; needs polyp-rt[web]); "
        "any address but 127.0.0.1 needs the access token",
        metavar="HOST:PORT",
    )
    token: str | None = option(
        None,
        "--serve: the access token (default: $POLYP_RT_TOKEN, else generated where one is needed and "
        "printed as part of the URL)",
    )
    max_frames: int | None = option(None, "stop after this many frames", metavar="N", low=1)
    queue_size: int = option(
        1,
        "synced display: frames waiting between threads (live sources drop the oldest; 1 = lowest latency)",
        low=1,
        high=100,
    )
    display: str = option(
        "auto",
        "synced: each frame is shown and recorded with its own mask, once inferred; passthrough: every "
        "frame at once, drawn with the newest finished mask (the video never waits for the model); "
        "auto: passthrough for a live source on the CPU, synced otherwise (docs/LIVE.md)",
        choices=("auto", "synced", "passthrough"),
    )
    max_mask_age: float = option(
        200.0,
        "passthrough: a mask computed from a frame captured longer ago than this (ms) is not drawn",
        low=0.0,
        high=60_000.0,
        low_open=True,
    )
    inference: str = option(
        "auto",
        "latency: one inference request at a time; throughput: two in flight, so decoding, inference "
        "and drawing overlap (the same masks, more frames a second); auto: throughput for a file "
        "played flat out, latency otherwise",
        choices=("auto", "latency", "throughput"),
    )
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    overlay: OverlayConfig = field(default_factory=OverlayConfig)

    @property
    def model_file(self) -> Path:
        """The model file this configuration runs (`model_to_run`: the bundled one for the device
        where it names none)."""
        return model_to_run(self.model, self.backend, self.device)

    def with_model(self) -> RunConfig:
        """This configuration with its model settled (`model_file`), as the run, its statistics and
        a batch's manifest record it."""
        return replace(self, model=self.model_file)


def run_config_of(command: Any, *, leave: Collection[str] = (), **fixed: Any) -> RunConfig:
    """The pipeline a command runs, from the command's configuration taken whole: each of its
    fields named as one of `RunConfig` (or, for a command without an `overlay`, as one of
    `OverlayConfig`) is that option, but those in `leave` (the same name for another thing);
    `fixed` sets what the command decides itself. `batch`, `bench --pipeline` and `eval --video`
    build their pipelines here, so an option they share with `run` reaches it without a copy."""
    names = {f.name for f in fields(command)} - set(leave) - set(fixed)
    options = {f.name: getattr(command, f.name) for f in fields(RunConfig) if f.name in names}
    if "overlay" not in options and "overlay" not in fixed:
        flat = {f.name: getattr(command, f.name) for f in fields(OverlayConfig) if f.name in names}
        options["overlay"] = OverlayConfig(**flat)
    return RunConfig(**options, **fixed)
