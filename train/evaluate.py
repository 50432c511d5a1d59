"""Evaluate a model (any backend) or a folder of predicted masks against ground truth."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from polyp_rt.core.errors import DataError, InputFileError
from polyp_rt.core.files import image_files
from polyp_rt.engines.base import Engine
from polyp_rt.engines.imaging import logit, mask_at, preprocess, sigmoid
from polyp_rt.train.data import SPLITS, Pair, load_splits, read_mask, read_rgb, recorded_split
from polyp_rt.train.metrics import MetricSet


def evaluate_engine(
    engine: Engine,
    pairs: list[Pair],
    threshold: float | None = None,
    progress: Callable[[int], None] | None = None,
    tta: bool = False,
) -> dict[str, object]:
    """Masks predicted at each image's own resolution, as the live pipeline does. `tta`: the
    probabilities of the image and of its horizontal and vertical flips, averaged."""
    threshold = engine.contract.threshold if threshold is None else threshold
    metrics = MetricSet()
    for pair in pairs:
        rgb = read_rgb(pair.image)
        x = preprocess(rgb, engine.contract)[None]
        logits = flip_averaged(engine, x) if tta else engine.infer(x)
        metrics.add(mask_at(logits[0], rgb.shape[0], rgb.shape[1], threshold), read_mask(pair.mask))
        if progress:
            progress(1)
    return metrics.summary()


def flip_averaged(engine: Engine, x: np.ndarray) -> np.ndarray:
    """Logits of the mean probability over x and its horizontal and vertical flips (NCHW)."""
    probs = sigmoid(engine.infer(x))
    for axis in (3, 2):
        flipped = np.ascontiguousarray(np.flip(x, axis))
        probs += np.flip(sigmoid(engine.infer(flipped)), axis)
    return logit(probs / 3)


def select_pairs(
    data: Path, split: str, model: Path | None, split_file: Path | None, skip_bad: bool
) -> tuple[list[Pair], str, int]:
    """The pairs to evaluate, a sentence saying which, and how many files were skipped.

    `split` is auto|train|val|test|all. A split.json beside a checkpoint is reused when it
    records a split of this data folder, so eval scores the run's own test split.
    """
    if split_file is None and model is not None:
        beside = model.parent / "split.json"
        if beside.is_file() and recorded_split(beside, data) is not None:
            split_file = beside
    splits = load_splits(data, skip_bad=skip_bad, split_file=split_file)
    known_split = splits.how == "pre-split folders" or split_file is not None
    if split == "auto":
        split = "test" if known_split else "all"
    if split == "all":
        pairs = [p for name in SPLITS for p in splits.pairs[name]]
        return pairs, f"all {len(pairs)} images in {data}", len(splits.skipped)
    if not known_split:
        raise DataError(
            f"{data}: no train/val/test split is known for this folder; pass --split all, "
            "--split-file RUN/split.json, or a checkpoint whose run folder holds split.json"
        )
    if not splits.pairs[split]:
        raise DataError(
            f"{data}: its {split} split is empty ({splits.how}); pass another --split, or --split all"
        )
    source = f" from {split_file}" if split_file is not None and splits.how != "pre-split folders" else ""
    return splits.pairs[split], f"the {split} split ({splits.how}{source})", len(splits.skipped)


def evaluate_mask_folders(predicted: Path, truth: Path) -> dict[str, object]:
    """Predicted mask PNGs against ground-truth masks with the same names."""
    for folder in (predicted, truth):
        if not folder.is_dir():
            raise InputFileError(f"{folder}: mask folder not found")
    truth_files = {p.stem: p for p in image_files(truth)}
    pred_files = image_files(predicted)
    if not pred_files:
        raise DataError(f"{predicted}: no mask images found")
    missing = [p.name for p in pred_files if p.stem not in truth_files]
    if missing:
        raise DataError(f"{truth}: no ground truth for {len(missing)} predicted masks (first: {missing[0]})")
    metrics = MetricSet()
    for path in pred_files:
        pred, gt = read_mask(path), read_mask(truth_files[path.stem])
        if pred.shape != gt.shape:
            raise DataError(f"{path}: {pred.shape[::-1]} mask but its truth is {gt.shape[::-1]}")
        metrics.add(pred, gt)
    summary = metrics.summary()
    summary["missing_predictions"] = len(truth_files) - len(pred_files)
    return summary
