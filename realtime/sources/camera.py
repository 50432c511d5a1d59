"""Webcams and capture cards, through OpenCV (V4L2 on Linux)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from polyp_rt.core.errors import SourceError
from polyp_rt.realtime.config import CaptureConfig
from polyp_rt.realtime.sources.base import Source, SourceStalled

log = logging.getLogger(__name__)


class CameraSource(Source):
    """A webcam or capture card (OpenCV, V4L2 on Linux): its index (0, or "0") or /dev/videoN.

    Asks for the size, rate and pixel format of `options` and logs what the device granted."""

    live = True

    def __init__(self, device: int | str, options: CaptureConfig) -> None:
        super().__init__()
        self.device: int | str = int(device) if isinstance(device, str) and device.isdigit() else device
        self.options = options
        self.description = f"camera {self.device}"
        self._cap: Any = None

    def _open(self) -> None:
        import cv2

        api = cv2.CAP_V4L2 if hasattr(cv2, "CAP_V4L2") and Path("/dev").exists() else cv2.CAP_ANY
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # its WARN lines: ours says it
        try:
            cap = cv2.VideoCapture(self.device, api)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not cap.isOpened():
            cap.release()
            where = self.device if isinstance(self.device, str) else f"/dev/video{self.device}"
            raise SourceError(
                f"camera {self.device}: cannot open it ({where} missing or busy); "
                "list cameras with `v4l2-ctl --list-devices` or pass a video file"
            )
        o = self.options
        if o.fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*o.fourcc[:4].ljust(4)))
        if o.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, o.width)
        if o.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, o.height)
        if o.fps:
            cap.set(cv2.CAP_PROP_FPS, o.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self.width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.fps = float(cap.get(cv2.CAP_PROP_FPS)) or 30.0
        code = int(cap.get(cv2.CAP_PROP_FOURCC))
        granted = "".join(chr((code >> 8 * i) & 0xFF) for i in range(4)) if code else "?"
        log.info(
            "camera %s granted %dx%d @ %.3g fps, %s", self.device, self.width, self.height, self.fps, granted
        )
        self.granted = {"width": self.width, "height": self.height, "fps": self.fps, "fourcc": granted}
        self._cap = cap
        self._t0 = time.monotonic()

    def _read_rgb(self) -> tuple[np.ndarray, float] | None:
        assert self._cap is not None
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            raise SourceStalled(f"camera {self.device}: no frame (unplugged or stalled)")
        return self._to_rgb(bgr), time.monotonic() - self._t0

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
