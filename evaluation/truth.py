"""A video's ground truth on disk: one mask per frame, `000000.png`, `000001.png`, ..., and an
optional `truth.json` that says which video the masks belong to and which frames show which lesion.

    {"video": "clip.mp4", "sha256": "...", "frames": 250, "fps": 25.0, "width": 640, "height": 480,
     "lesions": [[0, 24], [25, 49], [75, 99]]}

Every key is optional. `lesions` lists each lesion's first and last frame: the frames with a polyp
mask inside one such span are that lesion (without it, lesions are found by `--lesion-gap`).
`polyp-rt synth --video` writes the file; a research group adds it to its own annotations when a
polyp leaves the view and comes back, or two polyps follow each other without a gap.

Anything that does not fit (a frame without a mask, masks of another size, a video or record of
another length, another video's hash) is a `DataError`, one line naming what differs.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from polyp_rt.core.errors import DataError, InputFileError
from polyp_rt.core.files import image_files, write_json
from polyp_rt.train.data import read_mask

TRUTH_INFO = "truth.json"


@dataclass(frozen=True)
class TruthInfo:
    """What `truth.json` says; None where it says nothing."""

    video: str | None = None
    sha256: str | None = None
    frames: int | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    lesions: tuple[tuple[int, int], ...] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            k: (list(map(list, v)) if k == "lesions" else v) for k, v in asdict(self).items() if v is not None
        }

    @classmethod
    def read(cls, path: Path) -> TruthInfo:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            lesions = data.get("lesions")
            spans = None if lesions is None else tuple((int(a), int(b)) for a, b in lesions)
            info = cls(
                video=_optional(data, "video", str),
                sha256=_optional(data, "sha256", str),
                frames=_optional(data, "frames", int),
                fps=_optional(data, "fps", float),
                width=_optional(data, "width", int),
                height=_optional(data, "height", int),
                lesions=spans,
            )
        except (OSError, ValueError, TypeError) as exc:
            raise DataError(f"{path}: not a readable truth description ({exc})") from None
        if spans is not None:
            _check_spans(path, spans)
        return info


def _optional(data: dict[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if value is None:
        return None
    number = kind(value)
    if isinstance(number, float) and not (math.isfinite(number) and number > 0):
        raise ValueError(f"{key} must be a positive number")
    return number


def _check_spans(path: Path, spans: tuple[tuple[int, int], ...]) -> None:
    previous = -1
    for n, (first, last) in enumerate(spans, 1):
        if first < 0 or last < first:
            raise DataError(
                f"{path}: lesion {n} spans frames {first}..{last}; write [first, last], first <= last"
            )
        if first <= previous:
            raise DataError(
                f"{path}: lesion {n} (frames {first}..{last}) overlaps or precedes lesion {n - 1}"
            )
        previous = last


def write_truth_info(folder: Path, info: TruthInfo) -> Path:
    """`folder/truth.json` (strict JSON, written whole)."""
    path = folder / TRUTH_INFO
    write_json(path, info.to_json(), indent=None)
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class TruthFolder:
    """The masks of frames 0 .. frames-1, checked for gaps on opening; masks read one at a time."""

    def __init__(self, path: Path) -> None:
        if not path.is_dir():
            raise InputFileError(f"{path}: ground-truth mask folder not found")
        self.path = path
        by_index: dict[int, Path] = {}
        for file in image_files(path):
            if not file.stem.isdigit():
                raise DataError(
                    f"{file}: truth masks are named by frame number (000000.png, 000001.png, ...)"
                )
            index = int(file.stem)
            if index in by_index:
                raise DataError(f"{file}: frame {index} has two masks ({by_index[index].name} too)")
            by_index[index] = file
        if not by_index:
            raise DataError(f"{path}: no truth masks (000000.png, 000001.png, ...) in it")
        self.frames = max(by_index) + 1
        missing = [i for i in range(self.frames) if i not in by_index]
        if missing:
            raise DataError(
                f"{path}: masks of {len(missing)} of frames 0..{self.frames - 1} are missing "
                f"(first: {missing[0]:06d}.png)"
            )
        self.files = [by_index[i] for i in range(self.frames)]
        info_path = path / TRUTH_INFO
        self.info = TruthInfo.read(info_path) if info_path.is_file() else TruthInfo()
        if self.info.frames is not None and self.info.frames != self.frames:
            raise DataError(
                f"{info_path}: says {self.info.frames} frames, but the folder holds {self.frames} masks"
            )
        self.size: tuple[int, int] | None = None  # (height, width) every mask must have
        if self.info.width and self.info.height:
            self.size = (self.info.height, self.info.width)

    def mask(self, index: int) -> np.ndarray:
        """Frame `index`'s mask, uint8 {0,1}; DataError if it is not of the size of the others."""
        if not 0 <= index < self.frames:
            raise DataError(
                f"{self.path}: no truth mask for frame {index} (it holds frames 0..{self.frames - 1}); "
                "is it the truth of another video?"
            )
        mask = read_mask(self.files[index])
        if self.size is None:
            self.size = mask.shape[:2]
        elif mask.shape[:2] != self.size:
            h, w = self.size
            raise DataError(
                f"{self.files[index]}: mask is {mask.shape[1]}x{mask.shape[0]}, the frames are {w}x{h}"
            )
        return mask

    def expect_size(self, width: int, height: int, what: str) -> None:
        """The frames are `width` x `height`: the masks must be too (the first one is read to see)."""
        if self.size is None:
            self.size = self.mask(0).shape[:2]
        if self.size != (height, width):
            h, w = self.size
            raise DataError(f"{self.path}: masks are {w}x{h}, but {what} has {width}x{height} frames")

    def expect_frames(self, frames: int, what: str) -> None:
        if frames != self.frames:
            raise DataError(f"{what} has {frames} frames, but {self.path} holds masks of {self.frames}")

    def expect_video(self, sha256: str | None, what: str) -> None:
        """`what` (a video file or a record of one) is the video truth.json names, where both say."""
        if sha256 and self.info.sha256 and sha256 != self.info.sha256:
            name = self.info.video or "another video"
            raise DataError(
                f"{what} is not the video of {self.path} (its truth.json names {name}, sha256 "
                f"{self.info.sha256[:12]}..., this one is {sha256[:12]}...)"
            )

    def expect_fps(self, fps: float, what: str) -> None:
        if self.info.fps and fps > 0 and abs(fps / self.info.fps - 1) > 0.01:
            raise DataError(
                f"{what} runs at {fps:.3g} fps, but the video of {self.path} at {self.info.fps:.3g} fps "
                "(truth.json): is it a record of another video?"
            )
