"""The mucosa: a height field of haustral folds around the lumen, its albedo and vessels, and
the light at the lens. Smooth fields are made on a coarse grid and upsampled after."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from polyp_rt.train.scenes.fields import F32, value_noise


@dataclass
class Grid:
    """The coarse grid smooth fields are made on (about 128 cells per unit), over a w x h scene."""

    rng: np.random.Generator
    w: int  # the scene, in full-resolution pixels
    h: int
    f: float  # full-resolution pixels per cell, before rounding
    wc: int  # cells
    hc: int

    @classmethod
    def over(cls, rng: np.random.Generator, w: int, h: int, unit: float) -> Grid:
        f = max(1.0, unit / 128.0)
        return cls(rng, w, h, f, max(4, round(w / f)), max(4, round(h / f)))

    @property
    def fx(self) -> float:
        """Full-resolution pixels per cell, along x."""
        return self.w / self.wc

    @property
    def fy(self) -> float:
        return self.h / self.hc

    def noise(self, cell: float, octaves: int = 1) -> np.ndarray:
        """Smooth noise on the grid; `cell` in full-resolution pixels."""
        return value_noise(self.rng, self.wc, self.hc, cell / self.f, octaves)

    def full(self, field: np.ndarray) -> np.ndarray:
        """A field of the grid, bilinearly upsampled to the scene."""
        return cv2.resize(field, (self.w, self.h), interpolation=cv2.INTER_LINEAR)


@dataclass
class Coarse:
    """Smooth fields on a coarse grid and how to sample them at full resolution."""

    fx: float  # full-resolution pixels per coarse pixel, along x
    fy: float
    fields: np.ndarray  # (hc, wc, channels) float32

    def region(self, x0: int, y0: int, w: int, h: int) -> np.ndarray:
        """The fields bilinearly upsampled over the full-resolution box (x0, y0, w, h)."""
        m = np.array(
            [
                [1 / self.fx, 0, (x0 + 0.5) / self.fx - 0.5],
                [0, 1 / self.fy, (y0 + 0.5) / self.fy - 0.5],
            ],
            np.float64,
        )
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        return cv2.warpAffine(self.fields, m, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE)


@dataclass
class Light:
    exposure: float
    dx: float  # light direction, slightly off the lens axis
    dy: float


def lambert(gx: np.ndarray, gy: np.ndarray, depth: np.ndarray, light: Light) -> tuple[np.ndarray, np.ndarray]:
    """Lambert shading with the light at the lens: (light, facing-the-camera term)."""
    inv = 1.0 / (1.0 + gx * gx + gy * gy)
    lam = (1.0 - F32(light.dx) * gx - F32(light.dy) * gy) * np.sqrt(inv)
    np.clip(lam, 0.0, 1.0, out=lam)
    lit = depth * (0.25 + 0.75 * lam) * F32(light.exposure)
    inv *= inv
    inv *= inv  # n_z ** 8: only surfaces facing the lens glint
    return lit, inv * depth


def light_albedo(albedo: np.ndarray, lit: np.ndarray) -> np.ndarray:
    """albedo (..., 3) lit by `lit`; shadows turn red (green and blue fall off faster)."""
    out = np.empty(albedo.shape, F32)
    out[..., 0] = albedo[..., 0] * lit
    out[..., 1] = albedo[..., 1] * lit * (0.65 + 0.35 * lit)  # ~ lit ** 1.35
    out[..., 2] = albedo[..., 2] * lit * (0.75 + 0.25 * lit)  # ~ lit ** 1.25
    return out


@dataclass
class Lumen:
    """Where the dark lumen is (full-resolution pixels), and the folds around it."""

    x: float
    y: float
    radius: float
    waviness: float
    fold_freq: float

    @classmethod
    def draw(cls, rng: np.random.Generator, w: int, h: int, unit: float, p_in_view: float) -> Lumen:
        """In view, or outside the frame (then it only darkens one side)."""
        if rng.random() < p_in_view:
            x, y = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
            return cls(x, y, rng.uniform(0.09, 0.22) * unit, 0.25, rng.uniform(5.0, 9.0))
        diag = math.hypot(w, h)
        ang = rng.uniform(0, 2 * np.pi)
        dist = rng.uniform(0.55, 0.9) * diag
        x, y = w / 2 + dist * math.cos(ang), h / 2 + dist * math.sin(ang)
        return cls(x, y, rng.uniform(0.3, 0.6) * diag, 0.1, rng.uniform(8.0, 14.0))


@dataclass
class Tissue:
    """The mucosa's surface on the coarse grid: slopes, depth, wetness, and how it is lit."""

    gx: np.ndarray
    gy: np.ndarray
    depth: np.ndarray
    wet: np.ndarray
    lit: np.ndarray
    boost: np.ndarray  # where glints gather: wet crests facing the lens
    light: Light

    def coarse(self, grid: Grid) -> Coarse:
        return Coarse(grid.fx, grid.fy, cv2.merge([self.gx, self.gy, self.depth, self.wet]))


def tissue(grid: Grid, lumen: Lumen, unit: float) -> Tissue:
    """Haustral folds around the lumen (rings, denser with depth), bumps, and their shading."""
    rng, noise = grid.rng, grid.noise
    xs = (np.arange(grid.wc, dtype=F32) + 0.5) * F32(grid.fx) - F32(0.5 + lumen.x)
    ys = ((np.arange(grid.hc, dtype=F32) + 0.5) * F32(grid.fy) - F32(0.5 + lumen.y))[:, None]
    r = np.sqrt(xs * xs + ys * ys)
    r *= 1.0 + F32(lumen.waviness) * np.clip(noise(unit / 2.5, 2), -1.5, 1.5)  # wavy folds
    np.maximum(r, 1.0, out=r)
    r_lumen = r * (1.0 + 0.15 * np.clip(noise(unit / 8), -1.5, 1.5))  # an irregular lumen

    # Haustral folds: rings around the lumen, denser with depth (log spacing).
    phase = F32(lumen.fold_freq) * np.log(r * F32(1.0 / unit))
    phase += F32(rng.uniform(0, 2 * np.pi)) + 0.35 * noise(unit / 1.5)
    ridge = (0.5 + 0.5 * np.sin(phase)) ** 3
    ridge *= np.clip(0.7 + 0.6 * noise(unit / 1.2), 0.0, 1.0)
    height = ridge * r * F32(rng.uniform(0.08, 0.16))
    height += noise(unit / 4, 2) * F32(unit * 0.02)
    # The light is at the lens: it falls off with depth, towards the lumen.
    depth = 0.03 + 0.97 * (1.0 - np.exp(-((r_lumen / F32(lumen.radius)) ** 1.6)))
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3, scale=0.125 / grid.fx)
    gy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3, scale=0.125 / grid.fy)
    light = Light(rng.uniform(1.0, 1.15), *rng.uniform(-0.35, 0.35, 2))
    lit, facing = lambert(gx, gy, depth, light)
    wet = np.clip(noise(unit / 4, 2) + F32(rng.uniform(-0.8, 0.3)), 0.0, 1.0)
    boost = facing * (1.3 * wet + 0.9 * ridge + 0.4 * noise(unit / 30))  # + bigger glints
    return Tissue(gx, gy, depth, wet, lit, boost, light)


def mucosa(grid: Grid, unit: float) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """The mucosa's colour on the coarse grid: (base RGB, albedo HxWx3, two vessel fields).

    Vessels are thin lines at the zero crossings of smooth noise, t = noise / line width (a
    line where |t| < 1); a gate narrows the lines to nothing, so they branch and end instead
    of closing loops."""
    rng, noise = grid.rng, grid.noise
    red = rng.uniform(0.82, 0.95)
    base = np.array([red, red * rng.uniform(0.44, 0.56), red * rng.uniform(0.32, 0.42)], F32)
    tone, hue = noise(unit / 3, 2), noise(unit / 2)
    albedo = cv2.merge(
        [
            base[0] * (1 + 0.05 * tone),
            base[1] * (1 + 0.07 * tone + 0.06 * hue),
            base[2] * (1 + 0.07 * tone + 0.08 * hue),
        ]
    )
    vis = np.clip(0.5 + 0.7 * noise(unit / 2), 0.0, 1.0) * F32(rng.uniform(0.1, 0.9))
    lines = []
    for cell, width in ((unit / 7, 0.08), (unit / 16, 0.1)):
        gate = np.clip(0.3 + noise(cell * 1.4), 0.0, 1.0) * vis
        n = noise(cell) + 0.15 * noise(cell / 2.5)
        lines.append(n / (F32(width) * np.maximum(gate, 0.02)))
    return base, albedo, lines
