"""Synthetic data written to disk: image/mask data sets, and clips with their ground-truth masks.

Scenes come from polyp_rt.train.scenes; `PanZoomClip` moves over real image/mask pairs
instead. Masks are written as PNG with values {0, 255}. An earlier data set or clip is replaced
only with --overwrite (`check_synth_outputs`), and then the files of synth's own names are
removed first, so no stale pair or mask stays; files of other names are never touched.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence, Sized
from pathlib import Path

import cv2
import numpy as np

from polyp_rt.core.errors import DataError, InputFileError
from polyp_rt.core.locks import check_free, held_folder
from polyp_rt.core.paths import Place, check_new, check_paths, check_writable, make_folder
from polyp_rt.train.config import SynthConfig
from polyp_rt.train.data import Pair, read_mask, read_rgb, scan_folder
from polyp_rt.train.scenes import Clip, SceneConfig, Size, size_wh, smoothstep, synth_image, warp

log = logging.getLogger(__name__)

# the names synth writes (and so may remove): a data set's NNNNN.jpg / NNNNN.png, a clip's NNNNNN.png
OWN_NAMES = {"images": re.compile(r"\d{5,}\.jpg"), "masks": re.compile(r"\d{5,}\.png")}
CLIP_MASK_NAME = re.compile(r"\d{6,}\.png")


def clip_masks_dir(video: Path) -> Path:
    """Where `synth --video OUT.mp4` writes the clip's ground truth: OUT_masks/ beside it."""
    return video.with_name(video.stem + "_masks")


def check_synth_outputs(config: SynthConfig) -> None:
    """OutputError before anything is read or written: an output over --from-images, one that
    cannot be written, or an earlier data set or clip there without --overwrite."""
    inputs = []
    if config.from_images:
        inputs = [
            Place(f"--from-images {folder}/{sub}/", folder / sub, folder=True)
            for folder in config.from_images
            for sub in OWN_NAMES
        ]
    if config.out:
        check_writable(Place("--out", config.out, folder=True))
        outputs = [Place(f"--out {sub}/", config.out / sub, folder=True) for sub in OWN_NAMES]
    else:
        assert config.video is not None
        outputs = [
            Place("--video", config.video),
            Place("the clip's masks folder", clip_masks_dir(config.video), folder=True),
        ]
    check_paths(inputs, outputs)
    for place in outputs:
        check_new(place, config.overwrite)
        check_free(place.path, place.what, place.folder)


def remove_own(folder: Path, names: re.Pattern[str]) -> int:
    """Remove the files in `folder` whose names synth writes (an earlier output's); the count."""
    removed = 0
    for path in folder.iterdir():
        if names.fullmatch(path.name) and (path.is_symlink() or path.is_file()):
            path.unlink()
            removed += 1
    others = sum(1 for _ in folder.iterdir())
    if others:
        log.warning("%s: %d files synth did not write stay beside the new ones", folder, others)
    return removed


def write_dataset(
    out_dir: str | Path,
    count: int,
    size: Size,
    seed: int = 0,
    progress: Callable[[int], object] | None = None,
    config: SceneConfig | None = None,
) -> int:
    """Write `count` synthetic pairs in the Kvasir layout; returns the number written.

    out_dir/images/NNNNN.jpg (JPEG quality 95) and out_dir/masks/NNNNN.png (exact).
    Image i is seeded by (seed, i), so any one can be regenerated alone. The folder is locked while
    it is written (one writer); pairs of an earlier data set there (synth's own names) are removed.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    out = Path(out_dir)
    with held_folder(out, "the data set folder"):
        for sub, names in OWN_NAMES.items():
            remove_own(make_folder(out / sub, f"the data set's {sub}/ folder"), names)
        _write_pairs(out, count, size, seed, progress, config)
    return count


def _write_pairs(
    out: Path,
    count: int,
    size: Size,
    seed: int,
    progress: Callable[[int], object] | None,
    config: SceneConfig | None,
) -> None:
    for i in range(count):
        rgb, mask = synth_image(np.random.default_rng([seed, i]), size, config)
        name = f"{i:05d}"
        ok = cv2.imwrite(
            str(out / "images" / f"{name}.jpg"),
            cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, 95],
        )
        ok &= cv2.imwrite(str(out / "masks" / f"{name}.png"), mask)
        if not ok:
            raise InputFileError(f"cannot write synthetic data into {out}: check the folder")
        if progress is not None:
            progress(1)


PAIR_CHOICES = ("all", "polyp", "empty")  # which pairs a PanZoomClip takes: all, with a polyp, without
DARK = 8  # the grey level of the frames between two stills
PAIR_WORDS = {"polyp": "with a polyp in the mask", "empty": "with an empty mask (polyp-free)"}


class PanZoomClip:
    """A video made from real image/mask pairs: a few seconds of smooth pan and zoom each.

    `image_dir` is in the Kvasir layout (DIR/images/NAME.* with DIR/masks/NAME.*), or a list
    of such folders, taken one after the other. Each pair, in sorted order, fills
    `seconds_per_image` of frames of width x height: the image is scaled to cover the frame,
    then panned and zoomed (up to 1.35x) along a path seeded by (seed, pair). The mask moves
    with it (nearest neighbour, binarised at 128). `pairs` keeps all of them, only those
    whose mask shows a polyp ("polyp"), or only the polyp-free ones ("empty"). `gap_seconds`
    of dark frames (no polyp) separate two stills: the view lost, so that nothing seen on
    one still carries over to the next, as between two polyps of a real withdrawal.
    """

    def __init__(
        self,
        image_dir: str | Path | Sequence[str | Path],
        width: int,
        height: int,
        seed: int = 0,
        fps: float = 30.0,
        seconds_per_image: float = 2.0,
        pairs: str = "all",
        gap_seconds: float = 0.0,
    ) -> None:
        self.width, self.height = size_wh((width, height))
        if fps <= 0 or seconds_per_image <= 0 or gap_seconds < 0:
            raise ValueError("fps and seconds_per_image must be positive, gap_seconds not negative")
        if pairs not in PAIR_CHOICES:
            raise ValueError(f"pairs must be one of {', '.join(PAIR_CHOICES)}, got {pairs!r}")
        self.seed, self.fps = int(seed), float(fps)
        folders = [image_dir] if isinstance(image_dir, str | Path) else list(image_dir)
        found = [pair for folder in folders for pair in scan_folder(Path(folder)).pairs]
        if pairs != "all":
            found = [p for p in found if bool(read_mask(p.mask).any()) == (pairs == "polyp")]
            if not found:
                raise DataError(f"{', '.join(map(str, folders))}: no image/mask pairs {PAIR_WORDS[pairs]}")
        self.pairs: list[Pair] = found
        self.frames_per_image = max(1, round(seconds_per_image * fps))
        self.period = self.frames_per_image + round(gap_seconds * fps)  # frames from one still to the next
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def __len__(self) -> int:
        return len(self.pairs) * self.period - (self.period - self.frames_per_image)

    def _pair(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k not in self._cache:
            pair = self.pairs[k]
            self._cache[k] = read_rgb(pair.image), read_mask(pair.mask) * np.uint8(255)
            if len(self._cache) > 2:
                self._cache.popitem(last=False)
        return self._cache[k]

    def _matrix(self, index: int) -> np.ndarray:
        """The 2x3 frame-to-image map of frame `index` (for cv2.WARP_INVERSE_MAP)."""
        k, t = divmod(index, self.period)
        h_img, w_img = self._pair(k)[1].shape
        rng = np.random.default_rng([self.seed, k])
        z0, z1 = rng.uniform(1.0, 1.35, 2)
        u0, u1 = rng.uniform(0.0, 1.0, (2, 2))
        s = smoothstep(t / max(self.frames_per_image - 1, 1))
        z = z0 + (z1 - z0) * s
        u = u0 + (u1 - u0) * s
        scale = max(self.width / w_img, self.height / h_img) * z  # frame px per image px
        vw, vh = self.width / scale, self.height / scale  # the view, in image pixels
        cx = vw / 2 - 0.5 + u[0] * (w_img - vw)
        cy = vh / 2 - 0.5 + u[1] * (h_img - vh)
        px, py = (self.width - 1) / 2, (self.height - 1) / 2
        return np.array([[1 / scale, 0.0, cx - px / scale], [0.0, 1 / scale, cy - py / scale]], np.float64)

    def frame(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame `index`: (RGB uint8 HxWx3, mask uint8 HxW in {0, 255})."""
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} is outside 0..{len(self) - 1}")
        if index % self.period >= self.frames_per_image:  # between two stills
            return np.full((self.height, self.width, 3), DARK, np.uint8), np.zeros(
                (self.height, self.width), np.uint8
            )
        image, mask = self._pair(index // self.period)
        m = self._matrix(index)
        w, h = self.width, self.height
        img = warp(image, m, w, h, cv2.INTER_LINEAR)
        moved = warp(mask, m, w, h, cv2.INTER_NEAREST)
        _, moved = cv2.threshold(moved, 127, 255, cv2.THRESH_BINARY)
        return img, moved

    def frames(self, count: int | None = None, start: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Frames from `start`, `count` of them (default: to the end)."""
        stop = len(self) if count is None else min(len(self), start + count)
        for i in range(start, stop):
            yield self.frame(i)


def write_clip_masks(
    clip: Clip,
    count: int,
    masks_dir: str | Path,
    progress: Callable[[int], object] | None = None,
) -> int:
    """Write the ground truth of frames 0 .. count-1 as masks_dir/000000.png, ...

    Returns the number written.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if isinstance(clip, Sized) and count > len(clip):
        raise ValueError(f"the clip has {len(clip)} frames, cannot write {count}")
    out = make_folder(Path(masks_dir), "the masks folder")
    for i in range(count):
        save_frame_mask(out, i, clip.frame(i)[1])
        if progress is not None:
            progress(1)
    return count


def save_frame_mask(folder: Path, index: int, mask: np.ndarray) -> None:
    """A clip frame's ground truth as folder/NNNNNN.png, as `polyp-rt --truth` reads it."""
    if not cv2.imwrite(str(folder / f"{index:06d}.png"), mask):
        raise InputFileError(f"cannot write masks into {folder}: check the folder")
