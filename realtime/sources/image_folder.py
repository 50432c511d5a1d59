"""A folder of still images, played in name order."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from polyp_rt.core.errors import SourceError
from polyp_rt.core.files import IMAGE_SUFFIXES, image_files
from polyp_rt.realtime.config import CaptureConfig
from polyp_rt.realtime.sources.base import Source

log = logging.getLogger(__name__)


class ImageFolderSource(Source):
    """A folder of images in sorted order; an unreadable image is skipped and counted."""

    def __init__(self, folder: Path, options: CaptureConfig) -> None:
        super().__init__()
        self.folder = folder
        self.fps = options.fps or 30.0
        self.description = f"images in {folder}"

    def _open(self) -> None:
        self.files = image_files(self.folder)
        if not self.files:
            raise SourceError(f"{self.folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        self._next = 0
        first = self._load(self.files[0])
        if first is None:
            raise SourceError(f"{self.files[0]}: cannot read the first image of the folder")
        self.height, self.width = first.shape[:2]

    def _load(self, path: Path) -> np.ndarray | None:
        import cv2

        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        return None if bgr is None else self._to_rgb(bgr)

    def _read_rgb(self) -> tuple[np.ndarray, float] | None:
        while self._next < len(self.files):
            path, index = self.files[self._next], self._next
            self._next += 1
            rgb = self._load(path)
            if rgb is None:
                log.warning("%s: unreadable image, skipped", path)
                self.skip("unreadable images")
                continue
            return rgb, index / self.fps
        return None

    def close(self) -> None:
        pass
