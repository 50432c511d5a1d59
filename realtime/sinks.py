"""Where finished frames go: the window, the recording, mask PNGs, a ground-truth score."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from polyp_rt.core.errors import InputFileError, RecorderError
from polyp_rt.core.files import disk_full_hint
from polyp_rt.core.locks import lock_output
from polyp_rt.core.paths import make_folder
from polyp_rt.realtime.frame import Frame
from polyp_rt.realtime.recorder import Recorder

log = logging.getLogger(__name__)


class Sink:
    """Receives every finished frame in order on the output thread; `close()` finalises.

    A sink that shows or keeps the annotated picture (`frame.overlay`) says so with
    `needs_picture`; where no sink does and nothing is displayed, no picture is drawn."""

    needs_picture = False

    def write(self, frame: Frame) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def summary(self) -> dict[str, object]:
        """What it wrote, for the report and the stats JSON, under its own key."""
        return {}


class RecordingSink(Sink):
    needs_picture = True

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


SHOWN_CSV = "shown.csv"


class MaskWriter(Sink):
    """One binary PNG (0/255) per mask drawn, named by the index of the frame it was computed
    from: 000000.png, ... In the synced display that is every frame's own mask. In the passthrough
    display (`shown`) a mask is written once, when first drawn, and `shown.csv` says for every frame
    shown which mask was drawn on it and how much older its frame was (empty: none drawn)."""

    def __init__(self, folder: Path, shown: bool = False) -> None:
        self.lock = lock_output(make_folder(folder, "the mask folder"), "the mask folder", folder=True)
        try:
            # line by line, as the frames go: after a kill it lists every frame the sinks were given
            self._shown = (folder / SHOWN_CSV).open("w", encoding="utf-8", buffering=1) if shown else None
        except OSError as exc:
            raise RecorderError(f"{folder}: cannot create the mask folder ({exc.strerror})") from exc
        if self._shown is not None:
            self._shown.write("frame,mask_from,mask_age_ms\n")
        self.folder = folder
        self.shown = folder / SHOWN_CSV if shown else None
        self.written = 0
        self._last: int | None = None

    def write(self, frame: Frame) -> None:
        source = frame.index if frame.mask_from is None else frame.mask_from
        if self._shown is not None:
            drawn = frame.mask is not None
            age = f"{frame.mask_age_ms:.1f}" if drawn and frame.mask_age_ms is not None else ""
            self._line(f"{frame.index},{source if drawn else ''},{age}\n")
        if frame.mask is None or source == self._last:
            return
        self._last = source
        path = self.folder / f"{source:06d}.png"
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

    def _line(self, text: str) -> None:
        assert self._shown is not None
        try:
            self._shown.write(text)
        except OSError as exc:
            raise RecorderError(
                f"{self.folder / SHOWN_CSV}: writing failed ({exc.strerror or exc}){disk_full_hint(exc)}"
            ) from exc

    def close(self) -> None:
        if self._shown is not None:
            try:
                self._shown.close()
            except OSError as exc:
                log.error("%s: closing failed (%s)", self.folder / SHOWN_CSV, exc.strerror or exc)
            self._shown = None
        self.lock.close()

    def summary(self) -> dict[str, object]:
        # the model's masks, before the alert gate: what Dice scores; replaying the gate over them
        # (polyp_rt.realtime.alert_gate) gives what was drawn
        masks: dict[str, object] = {"folder": str(self.folder), "written": self.written, "gated": False}
        if self.shown is not None:
            masks["shown"] = str(self.shown)
        return {"masks": masks}


class TruthScorer(Sink):
    """Scores the mask drawn on each frame against `folder/<index>.png` (as `synth --video` writes
    them): in the passthrough display a mask of an earlier frame, so the score says what placing it
    on the newer one costs. Frames shown without a mask are counted apart (`unannotated`)."""

    def __init__(self, folder: Path) -> None:
        from polyp_rt.train.metrics import MetricSet

        if not folder.is_dir():
            raise InputFileError(f"{folder}: ground-truth mask folder not found")
        self.folder = folder
        self.metrics = MetricSet()
        self.missing = 0
        self.unannotated = 0

    def write(self, frame: Frame) -> None:
        from polyp_rt.train.data import read_mask

        path = self.folder / f"{frame.index:06d}.png"
        if not path.is_file():
            self.missing += 1
            return
        if frame.mask is None:
            self.unannotated += 1
            return
        self.metrics.add(frame.mask, read_mask(path))

    def summary(self) -> dict[str, object]:
        scores = {**self.metrics.summary(), "folder": str(self.folder), "missing_truth": self.missing}
        return {"truth": {**scores, "unannotated": self.unannotated}}


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
