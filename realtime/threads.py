"""How the CPU's cores are shared on the live path: the one place these choices are made.

Measured on a 2-core CPU with a live 640x480@30 source (docs/BENCHMARKS.md): the inference
runtime does best with every core (OpenVINO INT8: end-to-end p50 13 ms with 2 threads against
18.5 ms with 1, p99 22 against 24-32, no drops either way), while OpenCV's own thread pool
only competes with it for the few milliseconds of resizing and drawing per frame, so OpenCV
runs single-threaded. A video is decoded by as many FFmpeg threads as there are cores (FFmpeg's
own choice, one more, cost 7-9 % more CPU per 1080p frame on two cores; a single thread 2-7 %
less, but it decoded a third slower on the loaded machine): a file's frames in parallel (frame
and slice threads), a live stream's frame in slices only, since each extra frame thread holds
every frame back by one (two frames, 67 ms at 30 fps, with FFmpeg's three). Encoding threads are
FFmpeg's choice. Python itself hands the GIL between the pipeline's threads every millisecond
rather than every 5 (realtime/pauses.py):
at 60 fps a frame's threads must not wait a third of a frame for each other.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ThreadPlan:
    cores: int  # the cores this process may use
    runtime: int  # intra-op threads of a CPU runtime (ONNX Runtime, OpenVINO); GPU engines ignore it
    opencv: int  # OpenCV's pool (resize, colour conversion, drawing)
    decoder: int = 2  # FFmpeg threads decoding a video (encoding: FFmpeg's choice)
    switch_interval_ms: float = 1.0  # how often Python hands the GIL to a waiting thread (default 5)

    def apply(self) -> None:
        import cv2

        cv2.setNumThreads(self.opencv)

    def set_decoder(self, stream: Any, live: bool) -> None:
        """Set a PyAV video stream's decoding threads, before its first packet: a file's frames in
        parallel, a live stream's slices only (no frame held back)."""
        stream.thread_type = "SLICE" if live else "AUTO"
        stream.codec_context.thread_count = self.decoder

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def thread_plan(runtime_threads: int | None = None) -> ThreadPlan:
    """The plan for this machine; `runtime_threads` (--threads) overrides the runtime's share."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return ThreadPlan(cores=cores, runtime=runtime_threads or cores, opencv=1, decoder=cores)
