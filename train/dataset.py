"""Image/mask pairs as training tensors, with joint augmentation (torchvision.transforms.v2).

Every pair is decoded and resized once, when the data set is made, and kept in memory
at the model's input size: epochs pay for augmentation and the model, not for JPEG decoding.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

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


def decode_pairs(
    pairs: list[Pair], height: int, width: int, progress: Callable[[int], None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """All pairs at (height, width): images uint8 [N,H,W,3] RGB, masks uint8 {0,1} [N,H,W]."""
    images = np.empty((len(pairs), height, width, 3), np.uint8)
    masks = np.empty((len(pairs), height, width), np.uint8)

    def decode(i: int) -> None:
        images[i] = resize_rgb(read_rgb(pairs[i].image), height, width)
        masks[i] = cv2.resize(read_mask(pairs[i].mask), (width, height), interpolation=cv2.INTER_NEAREST)
        if progress:
            progress(1)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(decode, range(len(pairs))))
    return images, masks


class SegmentationDataset(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Returns (normalised float image [3,H,W], float mask {0,1} [1,H,W]) at the model size."""

    def __init__(
        self,
        pairs: list[Pair],
        contract: ModelContract,
        augment: bool,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.images, self.masks = decode_pairs(pairs, contract.height, contract.width, progress)
        self.transform = augmentation(contract.height, contract.width) if augment else None
        self.normalise = v2.Compose(
            [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(contract.mean), list(contract.std))]
        )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = tv_tensors.Image(torch.from_numpy(self.images[index].transpose(2, 0, 1).copy()))
        target = tv_tensors.Mask(torch.from_numpy(self.masks[index].copy())[None])
        if self.transform is not None:
            image, target = self.transform(image, target)
        return self.normalise(image).as_subclass(torch.Tensor), target.float().as_subclass(torch.Tensor)
