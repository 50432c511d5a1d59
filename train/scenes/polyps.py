"""Polyps: lumpy closed outlines, a dome height profile, their own tint and mottled texture.
The mask is exactly the filled outline."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from polyp_rt.train.scenes.fields import F32, value_noise
from polyp_rt.train.scenes.tissue import Coarse, Light, Lumen, lambert, light_albedo


def polyp_count(rng: np.random.Generator, p_empty: float, max_polyps: int) -> int:
    """How many polyps a scene holds: none with chance `p_empty`, else 1 (most often) to 5."""
    if max_polyps <= 0 or rng.random() < p_empty:
        return 0
    weights = np.array([0.6, 0.28, 0.12, 0.05, 0.03][:max_polyps])
    return int(rng.choice(len(weights), p=weights / weights.sum())) + 1


@dataclass
class Polyp:
    cx: float
    cy: float
    radius: float
    aspect: float
    angle: float
    harmonics: np.ndarray  # rows of (k, amplitude, phase)
    height: float  # dome height, in pixels
    profile: float  # dome exponent: 0.5 hemispherical .. 1.4 flat and sessile
    tint: np.ndarray  # RGB multiplier of the mucosa colour

    def boundary(self, theta: np.ndarray) -> np.ndarray:
        """The outline's radius at angles `theta`, as a multiple of `radius`."""
        r = np.ones_like(theta)
        for k, a, ph in self.harmonics:
            r += F32(a) * np.cos(F32(k) * theta + F32(ph))
        return r

    def outline(self, n: int = 128) -> np.ndarray:
        """n points (x, y) along the outline, in scene pixels."""
        t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
        r = self.boundary(t) * self.radius
        x, y = r * np.cos(t), r * np.sin(t) * self.aspect
        ca, sa = math.cos(self.angle), math.sin(self.angle)
        return np.stack([self.cx + ca * x - sa * y, self.cy + sa * x + ca * y], axis=1)


def make_polyp(rng: np.random.Generator, cx: float, cy: float, radius: float) -> Polyp:
    """A random polyp centred at (cx, cy): its shape, dome and tint (pale or redder)."""
    ks = np.arange(2, 7, dtype=np.float64)
    harmonics = np.stack(
        [ks, rng.uniform(0.0, 0.17, ks.size) / ks**0.7, rng.uniform(0, 2 * np.pi, ks.size)],
        axis=1,
    )
    pale = rng.random() < 0.4  # pale, whitish polyps; else redder ones
    tint = (np.array([1.03, 1.1, 1.08]) if pale else np.array([1.04, 0.9, 0.92])) * rng.uniform(0.95, 1.05, 3)
    return Polyp(
        cx=cx,
        cy=cy,
        radius=radius,
        aspect=float(rng.uniform(0.7, 1.0)),
        angle=float(rng.uniform(0, np.pi)),
        harmonics=harmonics,
        height=float(radius * rng.uniform(0.25, 0.8)),
        profile=float(rng.uniform(0.5, 1.4)),
        tint=tint.astype(F32),
    )


@dataclass
class Surface:
    """The full-resolution scene polyps are painted onto, and what their light depends on."""

    img: np.ndarray  # float32 RGB, lit mucosa
    boost: np.ndarray  # float32: where glints gather
    glint: np.ndarray  # float32 fine noise: texture and glints
    mask: np.ndarray  # uint8 {0, 255}: the polyps drawn so far
    coarse: Coarse  # the tissue's gx, gy, depth and wetness
    base: np.ndarray  # the mucosa's RGB colour
    light: Light


def place_polyps(
    rng: np.random.Generator,
    surface: Surface,
    count: int,
    sites: np.ndarray | None,
    lumen: Lumen,
    unit: float,
    radius_range: tuple[float, float],
) -> None:
    """Draw `count` polyps: at `sites` (n, 2), else at random in the central 70%, out of the
    deep lumen when possible; radii log-uniform in `radius_range` (fractions of `unit`)."""
    h, w = surface.mask.shape
    lo, hi = radius_range
    for i in range(count):
        radius = max(unit * float(np.exp(rng.uniform(math.log(lo), math.log(hi)))), 3.0)
        if sites is not None:
            cx, cy = float(sites[i][0]), float(sites[i][1])
        else:
            for _attempt in range(8):  # keep polyps out of the deep lumen when possible
                cx, cy = rng.uniform(0.15 * w, 0.85 * w), rng.uniform(0.15 * h, 0.85 * h)
                if math.hypot(cx - lumen.x, cy - lumen.y) > lumen.radius + radius * 0.5:
                    break
        draw_polyp(rng, make_polyp(rng, cx, cy, radius), surface)


def draw_polyp(rng: np.random.Generator, p: Polyp, s: Surface) -> None:
    """Fill the outline into the mask and paint the lit, textured dome into the image."""
    h, w = s.mask.shape
    pts = p.outline()
    x0, y0 = np.floor(pts.min(0)).astype(int) - 3
    x1, y1 = np.ceil(pts.max(0)).astype(int) + 4
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    cw, ch = x1 - x0, y1 - y0
    inside = np.zeros((ch, cw), np.uint8)
    fixed = np.round((pts - (x0, y0)) * 16).astype(np.int32)
    cv2.fillPoly(inside, [fixed], 255, lineType=cv2.LINE_8, shift=4)
    s.mask[y0:y1, x0:x1] |= inside
    inside_f = inside.astype(F32) * F32(1 / 255)

    # Dome: q = normalised radius, 0 at the centre and 1 on the outline.
    xs = np.arange(x0, x1, dtype=F32) - F32(p.cx)
    ys = np.arange(y0, y1, dtype=F32)[:, None] - F32(p.cy)
    ca, sa = F32(math.cos(p.angle)), F32(math.sin(p.angle))
    u = ca * xs + sa * ys
    v = (-sa * xs + ca * ys) * F32(1 / p.aspect)
    q2 = (u * u + v * v) / (p.boundary(np.arctan2(v, u)) * F32(p.radius)) ** 2
    dome = np.clip(1.0 - q2, 0.0, 1.0) ** F32(p.profile)
    lumps = value_noise(rng, cw, ch, max(p.radius / 2.5, 2.0), 2)
    height = dome * (1 + 0.12 * lumps) * inside_f * F32(p.height)
    fields = s.coarse.region(x0, y0, cw, ch)  # tissue gx, gy, depth, wet
    gx = fields[..., 0] + cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    gy = fields[..., 1] + cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    lit, facing = lambert(gx, gy, fields[..., 2], s.light)
    lit *= 1.0 + 0.03 * s.glint[y0:y1, x0:x1]

    # Texture: the mucosa colour, tinted and mottled, with a faint pit pattern.
    mottle = value_noise(rng, cw, ch, max(p.radius / 5, 2.0), 2)
    pits = np.clip(value_noise(rng, cw, ch, max(p.radius / 14, 1.5)) - 1.5, 0, 1)
    shade = 1 + 0.07 * mottle - 0.12 * pits
    albedo = (s.base * p.tint)[None, None, :] * shade[..., None]
    color = light_albedo(albedo, lit)
    # Feather the outline a little, inwards only: outside the mask nothing changes.
    feather = cv2.GaussianBlur(inside_f, (0, 0), max(p.radius / 30, 0.7)) * inside_f
    a = np.minimum(feather * 1.6, 1.0)
    crop = s.img[y0:y1, x0:x1]
    crop += a[..., None] * (color - crop)
    wet = np.clip(fields[..., 3] + 0.4, 0.0, 1.0)  # polyps are glossy
    bcrop = s.boost[y0:y1, x0:x1]
    bcrop += a * (facing * (1.4 * wet + 0.4) - bcrop)
