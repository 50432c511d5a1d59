"""Smooth noise, the lens (vignette, the endoscope's octagonal border) and the sensor (noise,
highlights): the pieces every scene is made of."""

from __future__ import annotations

import math

import cv2
import numpy as np

F32 = np.float32


def as_rng(rng_or_seed: np.random.Generator | int) -> np.random.Generator:
    """The generator itself, or a new one seeded by the int."""
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    return np.random.default_rng(int(rng_or_seed))


def value_noise(rng: np.random.Generator, w: int, h: int, cell: float, octaves: int = 1) -> np.ndarray:
    """Smooth value noise, roughly zero mean and unit deviation, float32 HxW."""
    out = np.zeros((h, w), F32)
    amp, total = 1.0, 0.0
    for _ in range(octaves):
        gw, gh = max(2, math.ceil(w / cell) + 1), max(2, math.ceil(h / cell) + 1)
        grid = rng.standard_normal((gh, gw), dtype=F32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.5
        cell = max(cell / 2.0, 1.0)
    out *= 1.4 / total  # interpolation shrinks the deviation of the grid values
    return out


def smoothstep(x: float) -> float:
    """0 below 0, 1 above 1, and a smooth S between (3x² - 2x³)."""
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def border_mask(w: int, h: int, cut: float) -> np.ndarray:
    """uint8 HxW, 255 inside the endoscope's octagonal field of view."""
    c = int(round(cut * min(w, h)))
    pts = np.array(
        [
            [c, 0],
            [w - 1 - c, 0],
            [w - 1, c],
            [w - 1, h - 1 - c],
            [w - 1 - c, h - 1],
            [c, h - 1],
            [0, h - 1 - c],
            [0, c],
        ],
        np.int32,
    )
    out = np.zeros((h, w), np.uint8)
    cv2.fillPoly(out, [pts], 255)
    return out


def vignette(w: int, h: int, strength: float) -> np.ndarray:
    """float32 HxW lens falloff, 1 in the centre."""
    x = (np.arange(w, dtype=F32) - (w - 1) / 2) / (0.5 * w)
    y = (np.arange(h, dtype=F32) - (h - 1) / 2) / (0.5 * h)
    r2 = (y[:, None] ** 2) * (h / max(w, h)) ** 2 + (x[None, :] ** 2) * (w / max(w, h)) ** 2
    return np.clip(1.0 - strength * r2, 0.0, 1.0).astype(F32)


class NoisePlane:
    """Sensor noise without per-frame normal draws: random windows into one noise plane."""

    def __init__(self, rng: np.random.Generator, w: int, h: int, sigma: float, pad: int = 32):
        n = rng.normal(0.0, sigma, (h + pad, w + pad, 3))
        self.plus = np.clip(n, 0, 255).round().astype(np.uint8)
        self.minus = np.clip(-n, 0, 255).round().astype(np.uint8)
        self.w, self.h, self.pad = w, h, pad

    def apply(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """`img` (uint8 HxWx3) with the noise of a window `rng` picks."""
        dy, dx = (int(v) for v in rng.integers(0, self.pad + 1, 2))
        sl = np.s_[dy : dy + self.h, dx : dx + self.w]
        return cv2.subtract(cv2.add(img, self.plus[sl]), self.minus[sl])


def add_tiled_noise(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Sensor noise from one small random tile repeated (its period is invisible)."""
    h, w = img.shape[:2]
    n = rng.normal(0.0, sigma, (61, 67, 3))
    reps = (math.ceil(h / 61), math.ceil(w / 67), 1)
    plus = np.tile(np.clip(n, 0, 255).round().astype(np.uint8), reps)[:h, :w]
    minus = np.tile(np.clip(-n, 0, 255).round().astype(np.uint8), reps)[:h, :w]
    return cv2.subtract(cv2.add(img, plus), minus)


def add_highlights(img: np.ndarray, spots: np.ndarray) -> np.ndarray:
    """Blend uint8 RGB towards white by the uint8 `spots` map (x1.25, saturating)."""
    s3 = cv2.merge([spots, spots, spots])
    return cv2.add(img, cv2.multiply(cv2.bitwise_not(img), s3, scale=1.25 / 255))
