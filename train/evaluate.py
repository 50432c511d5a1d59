"""Evaluate a model (any backend) or a folder of predicted masks against ground truth."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from polyp_rt.core.errors import DataError, InputFileError
from polyp_rt.core.files import image_files
from polyp_rt.engines.base import Engine
from polyp_rt.engines.imaging import mask_at, preprocess
from polyp_rt.train.data import SPLITS, Pair, load_splits, read_mask, read_rgb
from polyp_rt.train.metrics import MetricSet


def evaluate_engine(
    engine: Engine,
    pairs: list[Pair],
    threshold: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, object]:
    """Masks predicted at each image's own resolution, as the live pipeline does."""
    threshold = engine.contract.threshold if threshold is None else threshold
    metrics = MetricSet()
    for pair in pairs:
        rgb = read_rgb(pair.image)
        logits = engine.infer(preprocess(rgb, engine.contract)[None])
        metrics.add(mask_at(logits[0], rgb.shape[0], rgb.shape[1], threshold), read_mask(pair.mask))
        if progress:
            progress(1)
    return metrics.summary()


def select_pairs(
    data: Path, split: str, model: Path | None, split_file: Path | None, skip_bad: bool
) -> tuple[list[Pair], str, int]:
    """The pairs to evaluate, a sentence saying which, and how many files were skipped.

    `split` is auto|train|val|test|all. A split.json beside a checkpoint is reused
    when it was made from this data folder, so eval scores the run's own test split.
    """
    if split_file is None and model is not None:
        beside = model.parent / "split.json"
        if beside.is_file() and _split_root(beside) == data.resolve():
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
    return splits.pairs[split], f"the {split} split ({splits.how})", len(splits.skipped)


def _split_root(split_file: Path) -> Path | None:
    try:
        return Path(json.loads(split_file.read_text())["root"]).resolve()
    except (OSError, ValueError, KeyError):
        return None


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
