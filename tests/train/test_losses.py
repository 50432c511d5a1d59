import pytest
import torch

from polyp_rt.core.errors import PolypRtError
from polyp_rt.train.config import LOSSES
from polyp_rt.train.losses import image_dice_loss, make_loss

BIG = 20.0  # a logit far enough from 0 that sigmoid is 0 or 1 to float precision


def disc_batch(radii: list[int], size: int = 64) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    discs = [((yy - size // 2) ** 2 + (xx - size // 2) ** 2 <= r * r).float() for r in radii]
    return torch.stack(discs)[:, None]


def logits_of(masks: torch.Tensor) -> torch.Tensor:
    return (masks * 2 - 1) * BIG


def test_image_dice_loss_weighs_a_missed_small_polyp_like_a_missed_large_one():
    truth = disc_batch([24, 3])
    miss_small = truth.clone()
    miss_small[1] = 0
    miss_large = truth.clone()
    miss_large[0] = 0
    assert float(image_dice_loss(logits_of(truth), truth)) == pytest.approx(0, abs=1e-4)
    small = float(image_dice_loss(logits_of(miss_small), truth))
    large = float(image_dice_loss(logits_of(miss_large), truth))
    assert small == pytest.approx(large, rel=0.05) and small > 0.45
    # the batch-pooled Dice hardly notices the small one
    pooled = make_loss("dice")
    assert float(pooled(logits_of(miss_small), truth)) < 0.01 < float(pooled(logits_of(miss_large), truth))


def test_image_dice_loss_rewards_silence_on_an_empty_image():
    empty = torch.zeros(1, 1, 32, 32)
    assert float(image_dice_loss(logits_of(empty), empty)) == pytest.approx(0, abs=1e-4)
    false_alarm = disc_batch([5], size=32)
    assert float(image_dice_loss(logits_of(false_alarm), empty)) > 0.9


def test_every_loss_the_command_line_offers_is_made():
    truth = disc_batch([10, 4])
    for name in LOSSES:
        value = make_loss(name)(torch.zeros_like(truth), truth)
        assert value.ndim == 0 and float(value) > 0
    with pytest.raises(PolypRtError, match="choose one of"):
        make_loss("hinge")
