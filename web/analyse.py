"""The upload page's work: one image, or one short clip, through the project's own frame path.

An image goes through the live loop's CPU stage and overlay (so it is drawn as the live view
draws it) and comes back as two PNGs, the overlay and the mask, with the Dice against a mask
uploaded beside it. A clip runs through `compose()`'s pipeline, the same as `polyp-rt run`,
recording the overlay and the mask as two MP4s. One upload at a time: an engine runs one
batch at a time, and the CPU is the pipeline's.
"""

from __future__ import annotations

import base64
import math
import struct
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from polyp_rt.core.errors import PolypRtError
from polyp_rt.engines.base import Engine
from polyp_rt.realtime.config import CaptureConfig, RunConfig
from polyp_rt.realtime.cpu_stage import CpuStage
from polyp_rt.realtime.frame import Frame, now_ns
from polyp_rt.realtime.overlay import Hud, Overlay
from polyp_rt.realtime.pipeline import Pipeline
from polyp_rt.realtime.recorder import Recorder
from polyp_rt.realtime.sinks import Sink
from polyp_rt.web.config import ServeConfig
from polyp_rt.web.uploads import Received, UploadError, sniff

SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as a PNG's or JPEG's header declares it, before anything is decoded; None
    for other formats or where the header is not found."""
    if data.startswith(b"\x89PNG") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    at = 2
    while data.startswith(b"\xff\xd8") and at + 9 <= len(data) and data[at] == 0xFF:
        marker, length = data[at + 1], struct.unpack(">H", data[at + 2 : at + 4])[0]
        if marker in SOF_MARKERS:
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        at += 2 + length
    return None


def cut_short(data: bytes) -> bool:
    """A PNG without its closing IEND chunk or a JPEG without its end marker: cut off in transfer."""
    if data.startswith(b"\x89PNG"):
        return b"IEND" not in data[-64:]
    if data.startswith(b"\xff\xd8"):
        return b"\xff\xd9" not in data[-4096:]
    return False


def png_base64(picture: np.ndarray) -> str:
    """An RGB or single-channel picture as base64 PNG."""
    bgr = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR) if picture.ndim == 3 else picture
    ok, png = cv2.imencode(".png", bgr)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return base64.b64encode(png.tobytes()).decode("ascii")


class MaskVideo(Sink):
    """A clip's masks as a video (white polyp on black), and how many frames show a polyp."""

    def __init__(self, path: Path, width: int, height: int, fps: float) -> None:
        self.recorder = Recorder(path, width, height, fps)
        self.polyp_frames = 0

    def write(self, frame: Frame) -> None:
        mask = (
            frame.mask if frame.mask is not None else np.zeros(frame.rgb.shape[:2], np.uint8)
        )  # none drawn yet
        self.recorder.write(np.repeat(mask[..., None] * np.uint8(255), 3, axis=2), frame.pts_s)
        self.polyp_frames += frame.polyp

    def close(self) -> None:
        self.recorder.close()


class Analyser:
    """Segments uploads with one open engine (`model` is its file, for a clip's pipeline)."""

    def __init__(self, engine: Engine, model: Path, config: ServeConfig) -> None:
        self.engine, self.model, self.config = engine, model, config
        # a still has no fps or latency to show, and no time for a region to persist: all is drawn
        self.still = replace(config.overlay, hud=False, alert_min_frames=1, alert_hold=0)
        self._one_at_a_time = threading.Lock()
        self._pipeline: Pipeline | None = None

    def analyse(self, received: Received) -> dict[str, Any]:
        """The answer for one upload (JSON-ready); UploadError for what cannot be analysed."""
        with self._one_at_a_time:
            started = time.perf_counter()
            path = received.files["file"]
            with path.open("rb") as f:
                kind = sniff(f.read(16))
            if kind == "image":
                result = self._image(path, received.files.get("mask"))
            elif "mask" in received.files:
                raise UploadError("a mask goes with an image, not with a clip: upload the clip alone")
            else:
                result = self._clip(path)
            return {
                **result,
                "name": received.names.get("file", ""),
                "ms": (time.perf_counter() - started) * 1e3,
            }

    def stop(self) -> None:
        """Stop a clip that is running (the server is stopping)."""
        pipeline = self._pipeline
        if pipeline is not None:
            pipeline.request_stop("terminated")

    # ------------------------------------------------------------ an image

    def _read(self, path: Path, what: str) -> bytes:
        data = path.read_bytes()
        if sniff(data[:16]) != "image":
            raise UploadError(f"{what} is a video; upload {what} as an image (PNG, JPEG, BMP, TIFF)", 415)
        size = declared_size(data)
        if size is not None:
            self._check_pixels(*size, what)
        if cut_short(data):
            raise UploadError(f"{what} is cut short (a truncated file): upload the whole file", 400)
        return data

    def _check_pixels(self, width: int, height: int, what: str) -> None:
        if width * height > self.config.max_pixels * 1e6:
            raise UploadError(
                f"{what} is {width}x{height}; this server takes up to {self.config.max_pixels:g} megapixels "
                "(polyp-rt serve --max-pixels)",
                413,
            )

    def _image(self, path: Path, mask_path: Path | None) -> dict[str, Any]:
        from polyp_rt.train.data import read_mask

        data = self._read(path, "the image")
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if bgr is None:
            raise UploadError("the image cannot be decoded (damaged, or not really an image)", 400)
        height, width = bgr.shape[:2]
        self._check_pixels(width, height, "the image")
        frame = Frame(0, 0.0, now_ns(), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        CpuStage(self.engine, self.config.threshold)(frame)
        Overlay(self.still).draw(frame, Hud())
        assert frame.mask is not None and frame.overlay is not None
        area = frame.mask_area()
        result: dict[str, Any] = {
            "kind": "image",
            "width": width,
            "height": height,
            "polyp": area >= self.still.min_area,
            "area": area,
            "max_prob": frame.max_prob,
            "overlay_png": png_base64(frame.overlay),
            "mask_png": png_base64(frame.mask * np.uint8(255)),
            "dice": None,
            "iou": None,
        }
        if mask_path is not None:
            from polyp_rt.train.metrics import Counts

            self._read(mask_path, "the mask")
            try:
                truth = read_mask(mask_path)
            except PolypRtError as exc:
                raise UploadError(str(exc).replace(str(mask_path), "the mask"), 400) from exc
            if truth.shape != frame.mask.shape:
                raise UploadError(
                    f"the mask is {truth.shape[1]}x{truth.shape[0]} and the image {width}x{height}: "
                    "upload the mask that belongs to the image",
                    400,
                )
            ratios = Counts.of(frame.mask, truth).ratios()
            result.update(dice=ratios["dice"], iou=ratios["iou"])
        return result

    # ------------------------------------------------------------ a clip

    def _clip(self, path: Path) -> dict[str, Any]:
        from polyp_rt.realtime.compose import compose
        from polyp_rt.realtime.sources.video_file import VideoFileSource

        probe = VideoFileSource(path, CaptureConfig())
        try:
            probe.open()
        except PolypRtError as exc:
            raise UploadError(str(exc).replace(str(path), "the clip"), 400) from exc
        probe.close()
        self._check_pixels(probe.width, probe.height, "a frame of the clip")
        limit = self.config.max_clip_seconds
        seconds = probe.ends_at or (probe.frames_expected or 0) / probe.fps
        if seconds > limit:
            raise UploadError(
                f"the clip is {seconds:.1f} s long; this server takes clips up to {limit:g} s "
                "(polyp-rt serve --max-clip-seconds)",
                413,
            )
        folder = path.parent
        config = RunConfig(
            source=str(path),
            model=self.model,
            threshold=self.config.threshold,
            threads=self.config.threads,
            record=folder / "overlay.mp4",
            headless=True,
            max_frames=math.ceil(limit * probe.fps) + 1,  # a header that understates the length
            overlay=self.config.overlay,
        )
        masks = MaskVideo(folder / "mask.mp4", probe.width, probe.height, probe.fps)
        try:
            with compose(config, self.engine, extra_sinks=[masks]) as pipeline:
                self._pipeline = pipeline
                outcome = pipeline.run()
        except PolypRtError as exc:
            raise UploadError(str(exc).replace(str(path), "the clip"), 400) from exc
        finally:
            self._pipeline = None
        if outcome.error is not None:
            if isinstance(outcome.error, PolypRtError):
                raise UploadError(str(outcome.error).replace(str(path), "the clip"), 400) from outcome.error
            raise outcome.error
        summary = outcome.stats.summary()
        return {
            "kind": "clip",
            "width": probe.width,
            "height": probe.height,
            "frames": summary["frames_processed"],
            "fps": probe.fps,
            "polyp_frames": masks.polyp_frames,
            "overlay_mp4": base64.b64encode((folder / "overlay.mp4").read_bytes()).decode("ascii"),
            "mask_mp4": base64.b64encode((folder / "mask.mp4").read_bytes()).decode("ascii"),
        }
