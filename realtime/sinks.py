"""Where finished frames go: the window, the recording, mask PNGs, a ground-truth score."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from polyp_rt.core.errors import InputFileError, RecorderError
from polyp_rt.core.files import disk_full_hint
from polyp_rt.realtime.frame import Frame
from polyp_rt.realtime.recorder import Recorder

log = logging.getLogger(__name__)


class Sink:
    """Receives every finished frame in order on the output thread; `close()` finalises."""

    def write(self, frame: Frame) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def summary(self) -> dict[str, object]:
        """What it wrote, for the report and the stats JSON, under its own key."""
        return {}


class RecordingSink(Sink):
    def __init__(self, path: Path, width: int, height: int, fps: float) -> None:
        self.recorder = Recorder(path, width, height, fps)
        self.path = path

    def write(self, frame: Frame) -> None:
        assert frame.overlay is not None
        self.recorder.write(frame.overlay, frame.pts_s)

    def close(self) -> None:
        self.recorder.close()

    def summary(self) -> dict[str, object]:
        r = self.recorder
        return {"recording": {"path": str(self.path), "frames": r.frames_written, "codec": r.codec}}


class MaskWriter(Sink):
    """One binary PNG (0/255) per frame, named by the frame's index: 000000.png, ..."""

    def __init__(self, folder: Path) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecorderError(f"{folder}: cannot create the mask folder ({exc.strerror})") from exc
        self.folder = folder
        self.written = 0

    def write(self, frame: Frame) -> None:
        assert frame.mask is not None
        path = self.folder / f"{frame.index:06d}.png"
        ok, png = cv2.imencode(".png", frame.mask * np.uint8(255))
        try:  # not cv2.imwrite: it reports success when the disk is full
            if not ok:
                raise OSError("PNG encoding failed")
            path.write_bytes(png.tobytes())
        except OSError as exc:
            if path.is_file() and not path.is_symlink():
                path.unlink(missing_ok=True)  # a partial mask is no mask
            raise RecorderError(
                f"{path}: writing the mask failed ({exc.strerror or exc}){disk_full_hint(exc)}"
            ) from exc
        self.written += 1

    def summary(self) -> dict[str, object]:
        # the model's masks, before the alert gate: what Dice scores; replaying the gate over them
        # (polyp_rt.realtime.alert_gate) gives what was drawn
        return {"masks": {"folder": str(self.folder), "written": self.written, "gated": False}}


class TruthScorer(Sink):
    """Scores each predicted mask against `folder/<index>.png` (as `synth --video` writes them)."""

    def __init__(self, folder: Path) -> None:
        from polyp_rt.train.metrics import MetricSet

        if not folder.is_dir():
            raise InputFileError(f"{folder}: ground-truth mask folder not found")
        self.folder = folder
        self.metrics = MetricSet()
        self.missing = 0

    def write(self, frame: Frame) -> None:
        from polyp_rt.train.data import read_mask

        path = self.folder / f"{frame.index:06d}.png"
        if not path.is_file():
            self.missing += 1
            return
        assert frame.mask is not None
        self.metrics.add(frame.mask, read_mask(path))

    def summary(self) -> dict[str, object]:
        return {
            "truth": {**self.metrics.summary(), "folder": str(self.folder), "missing_truth": self.missing}
        }


def display_available() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or os.name == "nt"


class Display:
    """The OpenCV window. Keys: q/Esc quit, space pause, c contours, m mask."""

    title = "polyp-rt"

    def __init__(self) -> None:
        # resizable, aspect kept, no toolbar: the picture is all there is
        cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        self.paused = False
        self._size: tuple[int, int] | None = None

    def show(self, rgb: np.ndarray | None, wait_ms: int = 1) -> str | None:
        """Shows a frame (None: keep the last one) and returns a key action, if any."""
        if rgb is not None:
            size = (rgb.shape[1], rgb.shape[0])
            if size != self._size:  # open at the video's own size (1:1 pixels); the user may resize
                cv2.resizeWindow(self.title, *size)
                self._size = size
            cv2.imshow(self.title, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(wait_ms) & 0xFF
        if key in (ord("q"), 27):
            return "quit"
        if key == ord(" "):
            self.paused = not self.paused
            return "pause"
        if key == ord("c"):
            return "contours"
        if key == ord("m"):
            return "mask"
        try:
            if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                return "quit"  # the window was closed
        except cv2.error:
            return "quit"
        return None

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass


def open_display() -> Display | None:
    """The window, or None (with a warning) where there is no display."""
    if not display_available():
        log.warning("no display here (DISPLAY is not set): running headless")
        return None
    try:
        return Display()
    except cv2.error as exc:
        log.warning("cannot open a window (%s): running headless", str(exc).splitlines()[0])
        return None
