"""Polyp data sets on disk: layouts, checked image/mask pairs, splits.

Layouts, detected automatically:
- Kvasir-SEG: DIR/images/NAME.jpg|png with DIR/masks/NAME.* (same stem)
- CVC-ClinicDB: DIR/Original/N.tif|png with DIR/Ground Truth/N.*
- pre-split: DIR/train, DIR/val (or valid), DIR/test, each one of the above
Anything else is split with a seed (70/15/15 by default), recorded in the run's split.json.
A run may train on several data sets; each keeps its own split, and split.json lists them all.

Images and masks are read in their stored pixel layout (an EXIF orientation is ignored for
both, so a pair stays aligned); a mask is read by value, at any bit depth.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from polyp_rt.core.errors import DataError, InputFileError
from polyp_rt.core.files import image_files

LOSSY_EXTS = (".jpg", ".jpeg")
LAYOUTS = {"kvasir": ("images", "masks"), "cvc": ("Original", "Ground Truth")}
SPLITS = ("train", "val", "test")
VAL_SHARE = TEST_SHARE = 0.15  # of a folder without a ready split
# A lossless mask may have anti-aliased edges; more grey than this means it is not a mask.
MAX_GREY_FRACTION = 0.02


@dataclass(frozen=True)
class Pair:
    image: Path
    mask: Path
    polyp: bool | None = field(default=None, compare=False)  # whether the mask shows one (once checked)

    @property
    def name(self) -> str:
        return self.image.stem


@dataclass
class Scan:
    """The pairs found under one folder and what was skipped (with --skip-bad)."""

    root: Path
    layout: str
    pairs: list[Pair]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)


def _images_in(folder: Path) -> dict[str, Path]:
    by_stem: dict[str, Path] = {}
    for path in image_files(folder):
        by_stem.setdefault(path.stem, path)
    return by_stem


def detect_layout(root: Path) -> str:
    """'kvasir', 'cvc' or 'split' for a data folder; DataError otherwise."""
    if not root.exists():
        raise InputFileError(f"{root}: data folder not found")
    if not root.is_dir():
        raise InputFileError(f"{root}: not a folder; pass the folder that holds images/ and masks/")
    for layout, (images, masks) in LAYOUTS.items():
        if (root / images).is_dir() and (root / masks).is_dir():
            return layout
    if (root / "train").is_dir() and (root / "test").is_dir():
        return "split"
    raise DataError(
        f"{root}: no images/ + masks/ (Kvasir-SEG), Original/ + 'Ground Truth'/ (CVC-ClinicDB) "
        "or train/ + val/ + test/ folders found"
    )


def read_rgb(path: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None:
        raise DataError(f"{path}: cannot read this image (corrupt or not an image)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_mask(path: Path) -> np.ndarray:
    """A mask file as uint8 {0,1}: by value at any bit depth (0/255, 0/1, 16-bit 0/65280 or 0/256);
    pixels at or above half the mask's own maximum are polyp. JPEG masks (noisy) are thresholded
    at half of full scale."""
    import cv2

    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # the stored layout and depth, like read_rgb
    if raw is None:
        raise DataError(f"{path}: cannot read this mask (corrupt or not an image)")
    if raw.ndim == 3:
        raw = raw[..., :3].max(axis=2)
    if raw.dtype == np.bool_:
        return raw.astype(np.uint8)
    if not np.issubdtype(raw.dtype, np.integer):
        raise DataError(f"{path}: a mask of {raw.dtype} values; masks are 0/255 (or 0/1) integer images")
    top = int(raw.max())
    if top == 0:
        return np.zeros(raw.shape, np.uint8)
    if path.suffix.lower() in LOSSY_EXTS:
        if top <= 1:
            return raw.astype(np.uint8)
        return (raw >= (np.iinfo(raw.dtype).max + 1) // 2).astype(np.uint8)
    grey = np.count_nonzero((raw > 0) & (raw < top)) / raw.size
    if grey > MAX_GREY_FRACTION:
        raise DataError(
            f"{path}: mask is not binary ({grey:.0%} of pixels are grey levels); "
            "masks must be 0/255 or 0/1 images of the same size as the image"
        )
    return (raw >= (top + 1) // 2).astype(np.uint8)


def check_pair(pair: Pair) -> Pair:
    """Read both files and check they fit together (DataError naming the file if not); the pair
    with `polyp` set."""
    image = read_rgb(pair.image)
    mask = read_mask(pair.mask)
    if image.shape[:2] != mask.shape:
        raise DataError(
            f"{pair.mask}: mask is {mask.shape[1]}x{mask.shape[0]} but its image "
            f"{pair.image.name} is {image.shape[1]}x{image.shape[0]}"
        )
    return Pair(pair.image, pair.mask, bool(mask.any()))


def scan_folder(
    root: Path,
    skip_bad: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Scan:
    """Pairs in one Kvasir or CVC folder, every file read and checked."""
    layout = detect_layout(root)
    if layout == "split":
        raise DataError(f"{root}: holds train/val/test folders; pass one of them or use load_splits")
    images_dir, masks_dir = (root / d for d in LAYOUTS[layout])
    images, masks = _images_in(images_dir), _images_in(masks_dir)
    scan = Scan(root, layout, [])

    def bad(path: Path, reason: str) -> None:
        if not skip_bad:
            raise DataError(f"{path}: {reason} (pass --skip-bad to skip such files and count them)")
        scan.skipped.append((str(path), reason))

    for stem in sorted(set(masks) - set(images)):
        bad(masks[stem], f"mask without an image (no {images_dir.name}/{stem}.*)")
    candidates = []
    for stem, image in images.items():
        if stem in masks:
            candidates.append(Pair(image, masks[stem]))
        else:
            bad(image, f"image without a mask (no {masks_dir.name}/{stem}.*)")

    def check(pair: Pair) -> Pair | str:
        try:
            return check_pair(pair)
        except DataError as exc:
            return str(exc)
        finally:
            if progress:
                progress(1)

    with ThreadPoolExecutor(max_workers=4) as pool:
        checked = list(pool.map(check, candidates))
    for pair, problem in zip(candidates, checked, strict=True):
        if isinstance(problem, Pair):
            scan.pairs.append(problem)
        elif skip_bad:
            scan.skipped.append((str(pair.image), problem.split(": ", 1)[-1]))
        else:
            raise DataError(problem + " (pass --skip-bad to skip such files and count them)")
    if not scan.pairs:
        raise DataError(
            f"{root}: no usable image/mask pairs found in {images_dir.name}/ and {masks_dir.name}/"
        )
    return scan


def count_images(root: Path) -> int:
    """How many image files a data folder holds (for progress bars)."""
    layout = detect_layout(root)
    if layout == "split":
        return sum(count_images(folder) for folder in _split_dirs(root).values())
    return len(_images_in(root / LAYOUTS[layout][0]))


def _split_dirs(root: Path) -> dict[str, Path]:
    val = root / "val" if (root / "val").is_dir() else root / "valid"
    if not val.is_dir():
        raise DataError(f"{root}: has train/ and test/ but no val/ (or valid/) folder")
    return {"train": root / "train", "val": val, "test": root / "test"}


@dataclass
class Splits:
    """One data set's train/val/test pairs and how they were made."""

    root: Path
    how: str  # "pre-split folders" or "seeded 70/15/15 (seed N)"
    pairs: dict[str, list[Pair]]
    skipped: list[tuple[str, str]]

    @property
    def name(self) -> str:
        return self.root.resolve().name

    def to_json(self) -> dict[str, object]:
        return {
            "root": str(self.root.resolve()),
            "how": self.how,
            **{
                name: [str(p.image.relative_to(self.root)) for p in pairs]
                for name, pairs in self.pairs.items()
            },
        }


def splits_json(sets: list[Splits]) -> dict[str, object]:
    """What a run writes to split.json: each data set's split, in the order given."""
    return {"datasets": [s.to_json() for s in sets]}


def recorded_split(split_file: Path, root: Path) -> dict[str, object] | None:
    """The split that `split_file` records for the data folder `root`, or None if it has none.

    Reads both layouts: a run's {"datasets": [...]} and the single data set of older runs."""
    try:
        recorded = json.loads(Path(split_file).read_text())
        entries = recorded.get("datasets", [recorded])
        wanted = Path(root).resolve()
        for entry in entries:
            if Path(entry["root"]).resolve() == wanted:
                return dict(entry)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{split_file}: cannot read the split file ({exc})") from exc
    return None


def load_splits(
    root: Path,
    seed: int = 0,
    skip_bad: bool = False,
    split_file: Path | None = None,
    progress: Callable[[int], None] | None = None,
    val_share: float = VAL_SHARE,
    test_share: float = TEST_SHARE,
) -> Splits:
    """train/val/test pairs: pre-split folders as given, the split `split_file` records for this
    folder if it records one, else a seeded split with `val_share` and `test_share` held out."""
    root = Path(root)
    if detect_layout(root) == "split":
        scans = {name: scan_folder(d, skip_bad, progress) for name, d in _split_dirs(root).items()}
        skipped = [s for scan in scans.values() for s in scan.skipped]
        return Splits(root, "pre-split folders", {n: s.pairs for n, s in scans.items()}, skipped)

    scan = scan_folder(root, skip_bad, progress)
    recorded = recorded_split(split_file, root) if split_file is not None else None
    if split_file is not None and recorded is None:
        raise DataError(
            f"{split_file}: records no split of {root}; is --data a folder this run was trained on?"
        )
    if split_file is not None and recorded is not None:
        return _apply_split(scan, recorded, split_file)
    if not (0 <= val_share < 1 and 0 <= test_share < 1 and val_share + test_share < 1):
        raise DataError(f"validation share {val_share} and test share {test_share}: each in [0, 1), sum < 1")
    pairs = list(scan.pairs)
    random.Random(seed).shuffle(pairs)
    n_train = round(len(pairs) * (1 - val_share - test_share))
    n_val = min(round(len(pairs) * val_share), len(pairs) - n_train)
    parts = {
        "train": sorted(pairs[:n_train], key=lambda p: p.name),
        "val": sorted(pairs[n_train : n_train + n_val], key=lambda p: p.name),
        "test": sorted(pairs[n_train + n_val :], key=lambda p: p.name),
    }
    shares = "/".join(f"{round(100 * x)}" for x in (1 - val_share - test_share, val_share, test_share))
    return Splits(root, f"seeded {shares} (seed {seed})", parts, scan.skipped)


def _apply_split(scan: Scan, recorded: dict[str, object], split_file: Path) -> Splits:
    by_path = {str(p.image.relative_to(scan.root)): p for p in scan.pairs}
    parts: dict[str, list[Pair]] = {}
    for name in SPLITS:
        files = recorded.get(name) or []
        assert isinstance(files, list)
        missing = [f for f in files if f not in by_path]
        if missing:
            raise DataError(
                f"{split_file}: {len(missing)} {name} images are not in {scan.root} "
                f"(first: {missing[0]}); is --data the folder this run was trained on?"
            )
        parts[name] = [by_path[f] for f in files]
    return Splits(scan.root, str(recorded.get("how", "recorded")), parts, scan.skipped)
