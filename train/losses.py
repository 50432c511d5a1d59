"""Training losses on logits: bce-image-dice (default), bce-dice, focal, dice.

`dice` and `bce-dice` pool the whole batch into one soft Dice, so a large polyp outweighs a small
one; `bce-image-dice` takes soft Dice per image and averages, as `polyp-rt eval` scores.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from polyp_rt.core.errors import PolypRtError
from polyp_rt.train.config import LOSSES


def image_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - mean over images of soft Dice; an empty truth with an empty prediction scores 1."""
    prob = torch.sigmoid(logits).flatten(1)
    truth = target.flatten(1)
    dice = (2 * (prob * truth).sum(1) + smooth) / (prob.sum(1) + truth.sum(1) + smooth)
    return 1 - dice.mean()


def make_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    from segmentation_models_pytorch.losses import DiceLoss, FocalLoss

    dice = DiceLoss(mode="binary", from_logits=True)
    bce = torch.nn.BCEWithLogitsLoss()
    if name == "dice":
        return dice
    if name == "focal":
        return FocalLoss(mode="binary", alpha=0.25, gamma=2.0)
    if name == "bce-dice":
        return lambda logits, target: bce(logits, target) + dice(logits, target)
    if name == "bce-image-dice":
        return lambda logits, target: bce(logits, target) + image_dice_loss(logits, target)
    raise PolypRtError(f"unknown loss {name!r}; choose one of: {', '.join(LOSSES)}")
