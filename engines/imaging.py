"""Pre- and postprocessing as the model contract defines them (CPU, numpy + OpenCV).

Training, evaluation, export checks and the live CPU path all call these, so a
frame is prepared the same way everywhere.
"""

from __future__ import annotations

import numpy as np

from polyp_rt.engines.contract import ModelContract


def resize_rgb(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """`rgb` at height x width: pixel-area averaging to shrink, bilinear to enlarge (as training does)."""
    import cv2

    if rgb.shape[:2] == (height, width):
        return rgb
    shrinking = rgb.shape[0] >= height and rgb.shape[1] >= width  # pixel-area averaging
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(rgb, (width, height), interpolation=interpolation)


def normalise(rgb: np.ndarray, contract: ModelContract) -> np.ndarray:
    """uint8 HxWx3 RGB at model size -> float32 3xHxW."""
    mean = np.asarray(contract.mean, np.float32) * 255.0
    inv_std = 1.0 / (np.asarray(contract.std, np.float32) * 255.0)
    chw = np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32)
    chw -= mean[:, None, None]
    chw *= inv_std[:, None, None]
    return chw


def preprocess(rgb: np.ndarray, contract: ModelContract) -> np.ndarray:
    """uint8 HxWx3 RGB of any size -> float32 3xhxw at the model's input size."""
    return normalise(resize_rgb(rgb, contract.height, contract.width), contract)


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
    if plane.shape != (height, width):
        return (
            cv2.resize(plane, (width, height), interpolation=cv2.INTER_LINEAR) >= logit(threshold)
        ).astype(np.uint8)
    return (plane >= logit(threshold)).astype(np.uint8)
