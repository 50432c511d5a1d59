"""Image/mask pairs as training tensors, with joint augmentation (torchvision.transforms.v2)."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from polyp_rt.engines.contract import ModelContract
from polyp_rt.engines.imaging import resize_rgb
from polyp_rt.train.data import Pair, read_mask, read_rgb


def augmentation(height: int, width: int) -> v2.Transform:
    """Geometric transforms move image and mask together; colour jitter touches the image only."""
    return v2.Compose(
        [
            v2.RandomHorizontalFlip(),
            v2.RandomVerticalFlip(),
            v2.RandomApply([v2.RandomRotation(30)], p=0.5),
            v2.RandomResizedCrop((height, width), scale=(0.6, 1.0), ratio=(0.8, 1.25)),
            v2.ColorJitter(brightness=0.25, contrast=0.25, saturation=0.2, hue=0.03),
        ]
    )


class SegmentationDataset(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Returns (normalised float image [3,H,W], float mask {0,1} [1,H,W]) at the model size."""

    def __init__(self, pairs: list[Pair], contract: ModelContract, augment: bool) -> None:
        self.pairs = pairs
        self.contract = contract
        self.transform = augmentation(contract.height, contract.width) if augment else None
        self.normalise = v2.Compose(
            [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(contract.mean), list(contract.std))]
        )

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        pair = self.pairs[index]
        h, w = self.contract.size
        rgb = resize_rgb(read_rgb(pair.image), h, w)
        mask = cv2.resize(read_mask(pair.mask), (w, h), interpolation=cv2.INTER_NEAREST)
        image = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))))
        target = tv_tensors.Mask(torch.from_numpy(mask)[None])
        if self.transform is not None:
            image, target = self.transform(image, target)
        return self.normalise(image).as_subclass(torch.Tensor), target.float().as_subclass(torch.Tensor)
