"""Pre- and postprocessing as the model contract defines them (CPU, numpy + OpenCV).

Training, evaluation, export checks and the live CPU path all call these, so a
frame is prepared the same way everywhere.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from polyp_rt.core.errors import ModelError
from polyp_rt.engines.contract import ModelContract

COLOR_ORDERS = ("RGB", "BGR")  # what a model's contract may ask for; frames are RGB


def resize_rgb(rgb: np.ndarray, height: int, width: int, out: np.ndarray | None = None) -> np.ndarray:
    """`rgb` at height x width: pixel-area averaging to shrink, bilinear to enlarge; into `out`
    (uint8 height x width x 3) where given. A frame already that size is returned as it is."""
    import cv2

    if rgb.shape[:2] == (height, width):
        return rgb
    shrinking = rgb.shape[0] >= height and rgb.shape[1] >= width  # pixel-area averaging
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(rgb, (width, height), dst=out, interpolation=interpolation)


def model_channels(contract: ModelContract) -> tuple[int, int, int]:
    """For each of the model's input channels, the channel of an RGB frame it takes."""
    order = contract.color.upper()
    if order not in COLOR_ORDERS:
        raise ModelError(
            f"the model's contract asks for {contract.color!r} input; polyp-rt feeds {' or '.join(COLOR_ORDERS)}"
        )
    return (0, 1, 2) if order == "RGB" else (2, 1, 0)


def planes(rgb: np.ndarray, contract: ModelContract) -> np.ndarray:
    """The 3xHxW view of an HxWx3 RGB image in the model's colour order (no copy)."""
    chw = rgb.transpose(2, 0, 1)
    return chw if model_channels(contract) == (0, 1, 2) else chw[::-1]


@cache
def _scales(mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """mean and 1/std on the 0-255 scale, float32, shaped 3x1x1 (read-only: they are shared)."""
    mean255 = np.asarray(mean, np.float32) * 255.0
    inv_std = 1.0 / (np.asarray(std, np.float32) * 255.0)
    for array in (mean255, inv_std):
        array.setflags(write=False)
    return mean255[:, None, None], inv_std[:, None, None]


@cache
def _tables(mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[np.ndarray, ...]:
    """Per channel, the normalised value of each of the 256 pixel values, worked out with
    `normalise`'s own float32 arithmetic (so a look-up gives its result bit for bit)."""
    mean255, inv_std = _scales(mean, std)
    values = np.arange(256, dtype=np.float32)
    return tuple(
        ((values - m) * s).reshape(256, 1) for m, s in zip(mean255.ravel(), inv_std.ravel(), strict=True)
    )


def normalise(rgb: np.ndarray, contract: ModelContract) -> np.ndarray:
    """uint8 HxWx3 RGB at model size -> float32 3xHxW, in the model's colour order."""
    mean, inv_std = _scales(contract.mean, contract.std)
    chw = np.ascontiguousarray(planes(rgb, contract), dtype=np.float32)
    chw -= mean
    chw *= inv_std
    return chw


def preprocess(rgb: np.ndarray, contract: ModelContract) -> np.ndarray:
    """uint8 HxWx3 RGB of any size -> float32 3xhxw at the model's input size."""
    return normalise(resize_rgb(rgb, contract.height, contract.width), contract)


def preprocess_into(
    rgb: np.ndarray, contract: ModelContract, out: np.ndarray, resized: np.ndarray | None = None
) -> np.ndarray:
    """`preprocess`, bit for bit, written into `out` (float32 3xhxw: the engine's input batch [0]).

    The resize lands in `resized` (uint8 hxwx3) where given; each plane is then normalised by a
    256-entry table straight into its place in `out` (colour order, float conversion, mean, 1/std
    and the transposition in one pass). Returns `out`."""
    import cv2

    small = resize_rgb(rgb, contract.height, contract.width, out=resized)
    rgb_planes = cv2.split(small)
    tables = _tables(contract.mean, contract.std)
    for k, (channel, table) in enumerate(zip(model_channels(contract), tables, strict=True)):
        cv2.LUT(rgb_planes[channel], table, dst=out[k])
    return out


def to_batch(frames: list[np.ndarray], contract: ModelContract) -> np.ndarray:
    """uint8 RGB frames of any size -> one float32 batch [N,3,h,w] at the model's input size."""
    return np.stack([preprocess(f, contract) for f in frames])


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function in float32 (logits clipped to +-30, so exp never overflows)."""
    return (1.0 / (1.0 + np.exp(-np.clip(x, -30.0, 30.0)))).astype(np.float32)


def logit(p: float | np.ndarray) -> np.ndarray:
    """The inverse of the sigmoid (probabilities clipped to [1e-6, 1 - 1e-6])."""
    q = np.clip(np.asarray(p, np.float32), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def mask_at(logits: np.ndarray, height: int, width: int, threshold: float) -> np.ndarray:
    """Logits [1,h,w] or [h,w] -> uint8 {0,1} mask HxW: bilinear upsampling, then sigmoid >= threshold.

    The comparison happens in logit space (sigmoid is monotonic), which skips an exp per pixel.
    """
    import cv2

    plane = np.asarray(logits, np.float32).reshape(logits.shape[-2:])
    full: np.ndarray = plane
    if plane.shape != (height, width):
        full = cv2.resize(plane, (width, height), interpolation=cv2.INTER_LINEAR)
    # the comparison's booleans seen as bytes are the {0,1} mask: no second pass to convert them
    return np.greater_equal(full, logit(threshold), out=np.empty((height, width), bool)).view(np.uint8)
