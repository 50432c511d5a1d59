"""Training losses on logits: bce-dice (default), focal, dice."""

from __future__ import annotations

from collections.abc import Callable

import torch

from polyp_rt.core.errors import PolypRtError

LOSSES = ("bce-dice", "focal", "dice")


def make_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    from segmentation_models_pytorch.losses import DiceLoss, FocalLoss

    dice = DiceLoss(mode="binary", from_logits=True)
    if name == "dice":
        return dice
    if name == "focal":
        return FocalLoss(mode="binary", alpha=0.25, gamma=2.0)
    if name == "bce-dice":
        bce = torch.nn.BCEWithLogitsLoss()
        return lambda logits, target: bce(logits, target) + dice(logits, target)
    raise PolypRtError(f"unknown loss {name!r}; choose one of: {', '.join(LOSSES)}")
