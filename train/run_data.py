"""The data of a training run: each data set's splits, checked, and the loaders over them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from polyp_rt.core.errors import DataError, PolypRtError
from polyp_rt.core.progress import progress_bar
from polyp_rt.engines.contract import ModelContract
from polyp_rt.train.config import TrainConfig
from polyp_rt.train.data import Splits, count_images, load_splits
from polyp_rt.train.dataset import SegmentationDataset
from polyp_rt.train.epochs import Loader

log = logging.getLogger(__name__)


def load_data(config: TrainConfig, split_file: Path | None = None) -> list[Splits]:
    """Each data set's splits, in the order given; a resumed run reuses its split.json so no image
    changes side. A data set that is missing, empty, or has no polyp in its validation split is
    one line naming it."""
    if not config.data:
        raise PolypRtError("pass --data DIR (or --resume RUN/last.pt to continue a run)")
    names = [Path(d).resolve() for d in config.data]
    repeated = {str(d) for d in names if names.count(d) > 1}
    if repeated:
        raise PolypRtError(f"--data {sorted(repeated)[0]} is given twice; pass each data set once")
    with progress_bar() as bar:
        total = sum(count_images(d) for d in config.data)
        task = bar.add_task("checking data", total=total, status="")
        sets = [
            load_splits(
                d,
                config.seed,
                config.skip_bad,
                split_file,
                lambda n: bar.advance(task, n),
                config.val_share,
                config.test_share,
            )
            for d in config.data
        ]
    for splits in sets:
        _check_splits(splits)
    return sets


def _check_splits(splits: Splits) -> None:
    if splits.skipped:
        log.warning(
            "%s: skipped %d bad files (--skip-bad), e.g. %s: %s",
            splits.root,
            len(splits.skipped),
            *splits.skipped[0],
        )
    for name in ("train", "val"):
        if not splits.pairs[name]:
            raise DataError(
                f"{splits.root}: the {name} split is empty; the data set is too small to train on"
            )
    masks = {name: [bool(p.polyp) for p in splits.pairs[name]] for name in ("train", "val")}
    if not any(masks["train"]) and not any(masks["val"]):
        log.warning(
            "%s: every mask is empty (no polyp in any image); is --data the right folder?", splits.root
        )
    if not any(masks["val"]):
        raise DataError(
            f"{splits.root}: no image of its validation split ({len(masks['val'])} images) shows a polyp, "
            "so validation Dice cannot choose the best epoch; give it a split with polyps"
        )


def make_loaders(
    sets: list[Splits], contract: ModelContract, config: TrainConfig, device: torch.device
) -> tuple[Loader, dict[str, Loader]]:
    """One shuffled loader over every data set's train split (polyp-free images repeated
    `polyp_free_repeats` times), and one validation loader per data set, by name."""
    args: dict[str, Any] = {
        "batch_size": config.batch_size,
        "num_workers": config.workers,
        "pin_memory": device.type == "cuda",
        "persistent_workers": config.workers > 0,
    }
    train_pairs = [p for s in sets for p in s.pairs["train"]]
    with progress_bar() as bar:
        total = len(train_pairs) + sum(len(s.pairs["val"]) for s in sets)
        task = bar.add_task(f"decoding images at {contract.width}x{contract.height}", total=total, status="")
        train_set = SegmentationDataset(train_pairs, contract, True, lambda n: bar.advance(task, n))
        val_sets = {
            name: SegmentationDataset(s.pairs["val"], contract, False, lambda n: bar.advance(task, n))
            for name, s in zip(dataset_names(sets), sets, strict=True)
        }
    repeats = [1 if p.polyp else config.polyp_free_repeats for p in train_pairs]
    shown = torch.utils.data.Subset(train_set, [i for i, r in enumerate(repeats) for _ in range(r)])
    train_loader = torch.utils.data.DataLoader(
        shown, shuffle=True, drop_last=len(shown) > config.batch_size, **args
    )
    return train_loader, {
        name: torch.utils.data.DataLoader(v, shuffle=False, **args) for name, v in val_sets.items()
    }


def dataset_names(sets: list[Splits]) -> list[str]:
    """Short names for the data sets of a run (the folder's name; its parent's too where two clash)."""
    names = [s.name for s in sets]
    return [f"{s.root.resolve().parent.name}/{s.name}" if names.count(s.name) > 1 else s.name for s in sets]
