"""Synthetic colonoscopy-like scenes: still images and a moving camera, with exact polyp masks.

Used by the tests, for the demo clip and behind the live `synthetic:` source, so it is
numpy + OpenCV only (no per-pixel Python loops) and fast enough for real time.

A scene is rendered from a height field and an albedo:
- mucosa: pink-red albedo with low-frequency colour noise and a vessel network, on a
  height field of haustral folds (rings around the lumen, perspective-spaced) and bumps;
- lighting: the light sits at the camera, so brightness falls off with depth (a dark
  lumen) and with surface slope (fold creases and polyp rims darken);
- polyps: lumpy closed outlines (a few harmonics), a dome height profile and their own,
  slightly different tint and mottled texture. The mask is exactly the filled outline;
- then specular highlights (also on polyps; the mask is unchanged), optical blur,
  vignetting, sensor noise and, sometimes, the black octagonal border of Kvasir frames
  (the mask is zero under the border, where nothing of the polyp shows).

Randomness comes only from `numpy.random.default_rng` seeded by the caller: the same
seed gives byte-identical images and masks whatever the global RNG state.
Images are RGB uint8 HxWx3; masks uint8 HxW with values {0, 255}.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

Size = int | tuple[int, int]
"""An image size: an int for a square, or (width, height)."""

_F32 = np.float32


@dataclass(frozen=True)
class SceneConfig:
    """What a synthetic still image may contain."""

    p_empty: float = 0.15  # chance of an image without any polyp
    max_polyps: int = 3  # at most 5
    polyp_radius: tuple[float, float] = (0.05, 0.24)  # fraction of min(width, height)
    p_lumen: float = 0.65  # chance that the dark lumen is in view
    p_border: float = 0.5  # chance of the black octagonal endoscope border (stills only)
    noise_sigma: float = 2.0  # sensor noise, 8-bit levels


@dataclass(frozen=True)
class ClipConfig:
    """How a synthetic video moves: scene segments, camera path, border."""

    segment_seconds: float = 4.0  # one rendered scene ("world") per segment
    fade_seconds: float = 0.4  # crossfade between consecutive segments
    p_empty_segment: float = 0.3  # segments without any polyp
    world_scale: float = 1.8  # world size relative to the frame
    max_world_pixels: int = 2560 * 1440  # beyond this the world is rendered coarser
    max_zoom: float = 1.4
    border: bool = True
    scene: SceneConfig = field(default_factory=SceneConfig)


class Clip(Protocol):
    """A random-access source of (rgb, mask) frames."""

    width: int
    height: int
    fps: float

    def frame(self, index: int) -> tuple[np.ndarray, np.ndarray]: ...


# --------------------------------------------------------------------------- helpers


def size_wh(size: Size) -> tuple[int, int]:
    w, h = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if w < 8 or h < 8:
        raise ValueError(f"image size must be at least 8x8, got {w}x{h}")
    return w, h


def _as_rng(rng_or_seed: np.random.Generator | int) -> np.random.Generator:
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    return np.random.default_rng(int(rng_or_seed))


def _noise(rng: np.random.Generator, w: int, h: int, cell: float, octaves: int = 1) -> np.ndarray:
    """Smooth value noise, roughly zero mean and unit deviation, float32 HxW."""
    out = np.zeros((h, w), _F32)
    amp, total = 1.0, 0.0
    for _ in range(octaves):
        gw, gh = max(2, math.ceil(w / cell) + 1), max(2, math.ceil(h / cell) + 1)
        grid = rng.standard_normal((gh, gw), dtype=_F32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.5
        cell = max(cell / 2.0, 1.0)
    out *= 1.4 / total  # interpolation shrinks the deviation of the grid values
    return out


def smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def _border_mask(w: int, h: int, cut: float) -> np.ndarray:
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


def _vignette(w: int, h: int, strength: float) -> np.ndarray:
    """float32 HxW lens falloff, 1 in the centre."""
    x = (np.arange(w, dtype=_F32) - (w - 1) / 2) / (0.5 * w)
    y = (np.arange(h, dtype=_F32) - (h - 1) / 2) / (0.5 * h)
    r2 = (y[:, None] ** 2) * (h / max(w, h)) ** 2 + (x[None, :] ** 2) * (w / max(w, h)) ** 2
    return np.clip(1.0 - strength * r2, 0.0, 1.0).astype(_F32)


class _NoisePlane:
    """Sensor noise without per-frame normal draws: random windows into one noise plane."""

    def __init__(self, rng: np.random.Generator, w: int, h: int, sigma: float, pad: int = 32):
        n = rng.normal(0.0, sigma, (h + pad, w + pad, 3))
        self.plus = np.clip(n, 0, 255).round().astype(np.uint8)
        self.minus = np.clip(-n, 0, 255).round().astype(np.uint8)
        self.w, self.h, self.pad = w, h, pad

    def apply(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        dy, dx = (int(v) for v in rng.integers(0, self.pad + 1, 2))
        sl = np.s_[dy : dy + self.h, dx : dx + self.w]
        return cv2.subtract(cv2.add(img, self.plus[sl]), self.minus[sl])


def _add_tiled_noise(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Sensor noise from one small random tile repeated (its period is invisible)."""
    h, w = img.shape[:2]
    n = rng.normal(0.0, sigma, (61, 67, 3))
    reps = (math.ceil(h / 61), math.ceil(w / 67), 1)
    plus = np.tile(np.clip(n, 0, 255).round().astype(np.uint8), reps)[:h, :w]
    minus = np.tile(np.clip(-n, 0, 255).round().astype(np.uint8), reps)[:h, :w]
    return cv2.subtract(cv2.add(img, plus), minus)


# --------------------------------------------------------------------------- scene


def _polyp_count(rng: np.random.Generator, p_empty: float, max_polyps: int) -> int:
    if max_polyps <= 0 or rng.random() < p_empty:
        return 0
    weights = np.array([0.6, 0.28, 0.12, 0.05, 0.03][:max_polyps])
    return int(rng.choice(len(weights), p=weights / weights.sum())) + 1


@dataclass
class _Polyp:
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
        r = np.ones_like(theta)
        for k, a, ph in self.harmonics:
            r += _F32(a) * np.cos(_F32(k) * theta + _F32(ph))
        return r

    def outline(self, n: int = 128) -> np.ndarray:
        t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
        r = self.boundary(t) * self.radius
        x, y = r * np.cos(t), r * np.sin(t) * self.aspect
        ca, sa = math.cos(self.angle), math.sin(self.angle)
        return np.stack([self.cx + ca * x - sa * y, self.cy + sa * x + ca * y], axis=1)


def _make_polyp(rng: np.random.Generator, cx: float, cy: float, radius: float) -> _Polyp:
    ks = np.arange(2, 7, dtype=np.float64)
    harmonics = np.stack(
        [ks, rng.uniform(0.0, 0.17, ks.size) / ks**0.7, rng.uniform(0, 2 * np.pi, ks.size)],
        axis=1,
    )
    pale = rng.random() < 0.4  # pale, whitish polyps; else redder ones
    tint = (np.array([1.03, 1.1, 1.08]) if pale else np.array([1.04, 0.9, 0.92])) * rng.uniform(0.95, 1.05, 3)
    return _Polyp(
        cx=cx,
        cy=cy,
        radius=radius,
        aspect=float(rng.uniform(0.7, 1.0)),
        angle=float(rng.uniform(0, np.pi)),
        harmonics=harmonics,
        height=float(radius * rng.uniform(0.25, 0.8)),
        profile=float(rng.uniform(0.5, 1.4)),
        tint=tint.astype(_F32),
    )


@dataclass
class _Coarse:
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
class _Light:
    exposure: float
    dx: float  # light direction, slightly off the lens axis
    dy: float


def _shade(gx: np.ndarray, gy: np.ndarray, depth: np.ndarray, light: _Light) -> tuple[np.ndarray, np.ndarray]:
    """Lambert shading with the light at the lens: (light, facing-the-camera term)."""
    inv = 1.0 / (1.0 + gx * gx + gy * gy)
    lam = (1.0 - _F32(light.dx) * gx - _F32(light.dy) * gy) * np.sqrt(inv)
    np.clip(lam, 0.0, 1.0, out=lam)
    lit = depth * (0.25 + 0.75 * lam) * _F32(light.exposure)
    inv *= inv
    inv *= inv  # n_z ** 8: only surfaces facing the lens glint
    return lit, inv * depth


def _compose(albedo: np.ndarray, lit: np.ndarray) -> np.ndarray:
    """albedo (..., 3) lit by `lit`; shadows turn red (green and blue fall off faster)."""
    out = np.empty(albedo.shape, _F32)
    out[..., 0] = albedo[..., 0] * lit
    out[..., 1] = albedo[..., 1] * lit * (0.65 + 0.35 * lit)  # ~ lit ** 1.35
    out[..., 2] = albedo[..., 2] * lit * (0.75 + 0.25 * lit)  # ~ lit ** 1.25
    return out


def _draw_polyp(
    rng: np.random.Generator,
    p: _Polyp,
    img: np.ndarray,
    boost: np.ndarray,
    glint: np.ndarray,
    mask: np.ndarray,
    coarse: _Coarse,
    base: np.ndarray,
    light: _Light,
) -> None:
    """Fill the outline into `mask` and paint the lit, textured dome into `img`."""
    h, w = mask.shape
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
    mask[y0:y1, x0:x1] |= inside
    inside_f = inside.astype(_F32) * _F32(1 / 255)

    # Dome: q = normalised radius, 0 at the centre and 1 on the outline.
    xs = np.arange(x0, x1, dtype=_F32) - _F32(p.cx)
    ys = np.arange(y0, y1, dtype=_F32)[:, None] - _F32(p.cy)
    ca, sa = _F32(math.cos(p.angle)), _F32(math.sin(p.angle))
    u = ca * xs + sa * ys
    v = (-sa * xs + ca * ys) * _F32(1 / p.aspect)
    q2 = (u * u + v * v) / (p.boundary(np.arctan2(v, u)) * _F32(p.radius)) ** 2
    dome = np.clip(1.0 - q2, 0.0, 1.0) ** _F32(p.profile)
    lumps = _noise(rng, cw, ch, max(p.radius / 2.5, 2.0), 2)
    height = dome * (1 + 0.12 * lumps) * inside_f * _F32(p.height)
    fields = coarse.region(x0, y0, cw, ch)  # tissue gx, gy, depth, wet
    gx = fields[..., 0] + cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    gy = fields[..., 1] + cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    lit, facing = _shade(gx, gy, fields[..., 2], light)
    lit *= 1.0 + 0.03 * glint[y0:y1, x0:x1]

    # Texture: the mucosa colour, tinted and mottled, with a faint pit pattern.
    mottle = _noise(rng, cw, ch, max(p.radius / 5, 2.0), 2)
    pits = np.clip(_noise(rng, cw, ch, max(p.radius / 14, 1.5)) - 1.5, 0, 1)
    shade = 1 + 0.07 * mottle - 0.12 * pits
    albedo = (base * p.tint)[None, None, :] * shade[..., None]
    color = _compose(albedo, lit)
    # Feather the outline a little, inwards only: outside the mask nothing changes.
    feather = cv2.GaussianBlur(inside_f, (0, 0), max(p.radius / 30, 0.7)) * inside_f
    a = np.minimum(feather * 1.6, 1.0)
    crop = img[y0:y1, x0:x1]
    crop += a[..., None] * (color - crop)
    wet = np.clip(fields[..., 3] + 0.4, 0.0, 1.0)  # polyps are glossy
    bcrop = boost[y0:y1, x0:x1]
    bcrop += a * (facing * (1.4 * wet + 0.4) - bcrop)


def _render_scene(
    rng: np.random.Generator,
    w: int,
    h: int,
    n_polyps: int,
    unit: float,
    cfg: SceneConfig,
    sites: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tissue, lighting and polyps, before the optics: (float32 RGB, uint8 glints, mask).

    `unit` is the size, in pixels, of a frame's shorter side (the world of a clip is larger
    than one frame); `sites` (n, 2) are the polyp centres, else they are drawn at random,
    in the central 70% and out of the deep lumen. Smooth
    fields are computed on a coarse grid (about 128 cells per unit) and upsampled; only
    thin structures (vessels, glints, polyp outlines) are made at full resolution.
    """
    f = max(1.0, unit / 128.0)
    wc, hc = max(4, round(w / f)), max(4, round(h / f))
    fx, fy = w / wc, h / hc

    def noise(cell: float, octaves: int = 1) -> np.ndarray:  # cell in full-resolution pixels
        return _noise(rng, wc, hc, cell / f, octaves)

    diag = math.hypot(w, h)
    # Lumen: in view, or outside the frame (then it only darkens one side).
    if rng.random() < cfg.p_lumen:
        lx, ly = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
        lumen_r = rng.uniform(0.09, 0.22) * unit
        waviness, fold_freq = 0.25, rng.uniform(5.0, 9.0)
    else:
        ang = rng.uniform(0, 2 * np.pi)
        dist = rng.uniform(0.55, 0.9) * diag
        lx, ly = w / 2 + dist * math.cos(ang), h / 2 + dist * math.sin(ang)
        lumen_r = rng.uniform(0.3, 0.6) * diag
        waviness, fold_freq = 0.1, rng.uniform(8.0, 14.0)
    xs = (np.arange(wc, dtype=_F32) + 0.5) * _F32(fx) - _F32(0.5 + lx)
    ys = ((np.arange(hc, dtype=_F32) + 0.5) * _F32(fy) - _F32(0.5 + ly))[:, None]
    r = np.sqrt(xs * xs + ys * ys)
    r *= 1.0 + _F32(waviness) * np.clip(noise(unit / 2.5, 2), -1.5, 1.5)  # wavy folds
    np.maximum(r, 1.0, out=r)
    r_lumen = r * (1.0 + 0.15 * np.clip(noise(unit / 8), -1.5, 1.5))  # an irregular lumen

    # Haustral folds: rings around the lumen, denser with depth (log spacing).
    phase = _F32(fold_freq) * np.log(r * _F32(1.0 / unit))
    phase += _F32(rng.uniform(0, 2 * np.pi)) + 0.35 * noise(unit / 1.5)
    ridge = (0.5 + 0.5 * np.sin(phase)) ** 3
    ridge *= np.clip(0.7 + 0.6 * noise(unit / 1.2), 0.0, 1.0)
    height = ridge * r * _F32(rng.uniform(0.08, 0.16))
    height += noise(unit / 4, 2) * _F32(unit * 0.02)
    # The light is at the lens: it falls off with depth, towards the lumen.
    depth = 0.03 + 0.97 * (1.0 - np.exp(-((r_lumen / _F32(lumen_r)) ** 1.6)))
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3, scale=0.125 / fx)
    gy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3, scale=0.125 / fy)
    light = _Light(rng.uniform(1.0, 1.15), *rng.uniform(-0.35, 0.35, 2))
    lit, facing = _shade(gx, gy, depth, light)
    wet = np.clip(noise(unit / 4, 2) + _F32(rng.uniform(-0.8, 0.3)), 0.0, 1.0)
    boost = facing * (1.3 * wet + 0.9 * ridge + 0.4 * noise(unit / 30))  # + bigger glints

    # Mucosa albedo: pink-red with colour noise, lit on the coarse grid.
    red = rng.uniform(0.82, 0.95)
    base = np.array([red, red * rng.uniform(0.44, 0.56), red * rng.uniform(0.32, 0.42)], _F32)
    tone, hue = noise(unit / 3, 2), noise(unit / 2)
    albedo = cv2.merge(
        [
            base[0] * (1 + 0.05 * tone),
            base[1] * (1 + 0.07 * tone + 0.06 * hue),
            base[2] * (1 + 0.07 * tone + 0.08 * hue),
        ]
    )
    # Vessels: thin lines at the zero crossings of smooth noise, t = noise / line width;
    # a gate narrows the lines to nothing, so they branch and end instead of closing loops.
    vis = np.clip(0.5 + 0.7 * noise(unit / 2), 0.0, 1.0) * _F32(rng.uniform(0.1, 0.9))
    lines = []
    for cell, width in ((unit / 7, 0.08), (unit / 16, 0.1)):
        gate = np.clip(0.3 + noise(cell * 1.4), 0.0, 1.0) * vis
        n = noise(cell) + 0.15 * noise(cell / 2.5)
        lines.append(n / (_F32(width) * np.maximum(gate, 0.02)))
    coarse = _Coarse(fx, fy, cv2.merge([gx, gy, depth, wet]))

    img = cv2.resize(_compose(albedo, lit), (w, h), interpolation=cv2.INTER_LINEAR)
    t1, t2, boost = (cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR) for a in (*lines, boost))
    vessels = np.maximum(1.0 - np.abs(t1), 0.0)
    vessels += np.maximum(1.0 - np.abs(t2), 0.0)
    glint = _noise(rng, w, h, max(unit / 80, 1.5))
    texture = 1.0 + 0.025 * glint  # fine granular texture
    img *= cv2.merge([texture * (1.0 - _F32(k) * vessels) for k in (0.15, 0.35, 0.28)])

    # Polyps, on top of the mucosa.
    mask = np.zeros((h, w), np.uint8)
    lo, hi = cfg.polyp_radius
    for i in range(n_polyps if sites is None else len(sites)):
        radius = max(unit * float(np.exp(rng.uniform(math.log(lo), math.log(hi)))), 3.0)
        if sites is not None:
            cx, cy = float(sites[i][0]), float(sites[i][1])
        else:
            for _attempt in range(8):  # keep polyps out of the deep lumen when possible
                cx, cy = rng.uniform(0.15 * w, 0.85 * w), rng.uniform(0.15 * h, 0.85 * h)
                if math.hypot(cx - lx, cy - ly) > lumen_r + radius * 0.5:
                    break
        polyp = _make_polyp(rng, cx, cy, radius)
        _draw_polyp(rng, polyp, img, boost, glint, mask, coarse, base, light)

    # Specular highlights: glints, clustered on wet patches and crests facing the lens.
    spots = np.maximum(glint + 1.6 * boost - _F32(4.0), 0.0)
    spots = cv2.convertScaleAbs(spots, alpha=2.0 * 255)  # saturates at 255
    spots = cv2.GaussianBlur(spots, (0, 0), max(unit / 320, 0.6))
    return img, spots, mask


def _add_highlights(img: np.ndarray, spots: np.ndarray) -> np.ndarray:
    """Blend uint8 RGB towards white by the uint8 `spots` map (x1.25, saturating)."""
    s3 = cv2.merge([spots, spots, spots])
    return cv2.add(img, cv2.multiply(cv2.bitwise_not(img), s3, scale=1.25 / 255))


def _finish(
    img: np.ndarray,
    spots: np.ndarray,
    mask: np.ndarray,
    rng: np.random.Generator,
    unit: float,
    cfg: SceneConfig,
    border: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Optics and sensor of a still image: blur, vignette, highlights, border, noise."""
    h, w = mask.shape
    out = cv2.convertScaleAbs(img, alpha=255.0)
    out = cv2.GaussianBlur(out, (0, 0), max(unit / 600, 0.5) * rng.uniform(0.7, 1.3))
    vig = cv2.convertScaleAbs(_vignette(w, h, rng.uniform(0.25, 0.5)), alpha=255.0)
    if border:
        fov = _border_mask(w, h, rng.uniform(0.08, 0.16))
        vig = cv2.bitwise_and(vig, fov)
        mask = cv2.bitwise_and(mask, fov)
    out = cv2.multiply(out, cv2.merge([vig, vig, vig]), scale=1 / 255)
    out = _add_highlights(out, spots)
    if cfg.noise_sigma > 0:
        out = _add_tiled_noise(out, rng, cfg.noise_sigma)
    if border:
        out = cv2.bitwise_and(out, out, mask=fov)
    return out, mask


# --------------------------------------------------------------------------- stills


def synth_image(
    rng_or_seed: np.random.Generator | int, size: Size, config: SceneConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One colonoscopy-like RGB image (uint8 HxWx3) and its exact polyp mask (uint8 {0,255}).

    `size` is an int (square) or (width, height). An image holds 0-3 polyps; with the
    default config about 15% hold none (an all-zero mask).
    """
    cfg = config or SceneConfig()
    rng = _as_rng(rng_or_seed)
    w, h = size_wh(size)
    unit = float(min(w, h))
    n = _polyp_count(rng, cfg.p_empty, cfg.max_polyps)
    border = rng.random() < cfg.p_border
    img, spots, mask = _render_scene(rng, w, h, n, unit, cfg)
    return _finish(img, spots, mask, rng, unit, cfg, border)


# --------------------------------------------------------------------------- video


def warp(image: np.ndarray, m: np.ndarray, w: int, h: int, interpolation: int) -> np.ndarray:
    flags = interpolation | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(image, m, (w, h), flags=flags, borderMode=cv2.BORDER_REFLECT_101)


@dataclass
class _World:
    """One segment's scene, larger than the frame, and the camera's path over it."""

    image: np.ndarray  # uint8 RGB, in world pixels
    spots: np.ndarray  # uint8 specular highlights, added after the optics
    mask: np.ndarray
    scale: float  # world pixels per frame pixel
    start: np.ndarray  # camera centre at t = 0 and t = 1, in frame pixels
    end: np.ndarray
    zoom: tuple[float, float]
    roll: tuple[float, float]
    wobble: np.ndarray  # (2, 3): amplitude, cycles per segment, phase, for x and y

    def matrix(self, t: float, w: int, h: int) -> np.ndarray:
        """The frame-to-world map at segment time t (0..1, a little beyond while fading)."""
        ease = smoothstep(t) * 0.5 + t * 0.5  # starts and ends gently, never stops
        centre = self.start + (self.end - self.start) * ease
        amp, freq, phase = self.wobble[:, 0], self.wobble[:, 1], self.wobble[:, 2]
        centre = centre + amp * np.sin(2 * np.pi * freq * t + phase)
        z = self.zoom[0] + (self.zoom[1] - self.zoom[0]) * ease
        a = self.roll[0] + (self.roll[1] - self.roll[0]) * ease
        ca, sa = math.cos(a) / z, math.sin(a) / z
        # Keep the rotated, zoomed view inside the world.
        ww, wh = self.image.shape[1] / self.scale, self.image.shape[0] / self.scale
        ex = abs(ca) * w / 2 + abs(sa) * h / 2
        ey = abs(sa) * w / 2 + abs(ca) * h / 2
        cx = min(max(centre[0], ex), ww - ex)
        cy = min(max(centre[1], ey), wh - ey)
        px, py = (w - 1) / 2, (h - 1) / 2
        k = self.scale
        return np.array(
            [
                [k * ca, -k * sa, k * (cx - ca * px + sa * py)],
                [k * sa, k * ca, k * (cy - sa * px - ca * py)],
            ],
            np.float64,
        )


class SyntheticClip:
    """A synthetic colonoscopy video: camera drift, slow zoom and roll over scenes.

    Every `segment_seconds` a new scene ("world", 1.8x the frame) is rendered, seeded by
    (seed, segment); frames are crops of it along a smooth camera path, so polyps enter
    and leave the view, and some segments hold none. Consecutive segments crossfade; the
    mask of a crossfaded frame is the mask of the scene with the larger weight.
    `frame(i)` depends only on (seed, i): random access equals sequential access.
    """

    _CACHE = 3  # worlds kept: the current one, the previous (for fades), one spare

    def __init__(
        self,
        width: int,
        height: int,
        seed: int = 0,
        fps: float = 30.0,
        config: ClipConfig | None = None,
    ) -> None:
        self.width, self.height = size_wh((width, height))
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.seed, self.fps = int(seed), float(fps)
        self.config = cfg = config or ClipConfig()
        self.segment_frames = max(2, round(cfg.segment_seconds * fps))
        self.fade_frames = min(round(cfg.fade_seconds * fps), self.segment_frames // 2)
        self.max_roll = 0.12
        pixels = width * height * cfg.world_scale**2
        self._scale = min(1.0, math.sqrt(cfg.max_world_pixels / pixels))
        rng = np.random.default_rng([self.seed, 0])
        vig = _vignette(self.width, self.height, rng.uniform(0.3, 0.45))
        optics = cv2.convertScaleAbs(vig, alpha=255.0)
        self._fov = np.full((self.height, self.width), 255, np.uint8)
        if cfg.border:
            self._fov = _border_mask(self.width, self.height, rng.uniform(0.08, 0.14))
            optics = cv2.bitwise_and(optics, self._fov)
        self._optics = cv2.merge([optics, optics, optics])
        self._noise = _NoisePlane(rng, self.width, self.height, cfg.scene.noise_sigma)
        self._worlds: OrderedDict[int, _World] = OrderedDict()

    def _world(self, segment: int) -> _World:
        world = self._worlds.get(segment)
        if world is not None:
            self._worlds.move_to_end(segment)
            return world
        world = self._make_world(segment)
        self._worlds[segment] = world
        if len(self._worlds) > self._CACHE:
            self._worlds.popitem(last=False)
        return world

    def _make_world(self, segment: int) -> _World:
        cfg, w, h, k = self.config, self.width, self.height, self._scale
        rng = np.random.default_rng([self.seed, 1, segment])
        fw, fh = w * cfg.world_scale, h * cfg.world_scale  # world size in frame pixels
        ww, wh = max(8, round(fw * k)), max(8, round(fh * k))

        # Camera path: start and end where the widest view still fits, plus a wobble.
        sr = math.sin(self.max_roll)
        wob = 0.03 * min(w, h)
        ex, ey = w / 2 + h / 2 * sr + wob, h / 2 + w / 2 * sr + wob
        lo, hi = np.array([ex, ey]), np.array([fw - ex, fh - ey])
        start, end = rng.uniform(lo, hi), rng.uniform(lo, hi)
        wobble = np.stack(
            [
                rng.uniform(0.3, 1.0, 2) * wob,
                rng.uniform(0.5, 2.0, 2),
                rng.uniform(0, 2 * np.pi, 2),
            ],
            axis=1,
        )
        zoom = (float(rng.uniform(1.0, cfg.max_zoom)), float(rng.uniform(1.0, cfg.max_zoom)))
        roll = (
            float(rng.uniform(-self.max_roll, self.max_roll)),
            float(rng.uniform(-self.max_roll, self.max_roll)),
        )

        # Polyps near the path, so they pass through the view: in at some point, out later.
        n = _polyp_count(rng, cfg.p_empty_segment, cfg.scene.max_polyps)
        along = rng.uniform(0.0, 1.0, (n, 1))
        offset = rng.uniform(-0.5, 0.5, (n, 2)) * (w, h)
        sites = (start + (end - start) * along + offset) * k
        unit = min(w, h) * k
        img, spots, mask = _render_scene(rng, ww, wh, n, unit, cfg.scene, sites=sites)
        image = cv2.convertScaleAbs(img, alpha=255.0)
        image = cv2.GaussianBlur(image, (0, 0), max(unit / 600, 0.5))
        return _World(image, spots, mask, k, start, end, zoom, roll, wobble)

    def _view(self, segment: int, frame_in_segment: int) -> tuple[np.ndarray, ...]:
        """(image, highlights, mask) of one world at one time, before the optics."""
        world = self._world(segment)
        t = frame_in_segment / self.segment_frames
        m = world.matrix(t, self.width, self.height)
        w, h = self.width, self.height
        return tuple(warp(a, m, w, h, cv2.INTER_LINEAR) for a in (world.image, world.spots, world.mask))

    def frame(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame `index`: (RGB uint8 HxWx3, mask uint8 HxW in {0, 255})."""
        if index < 0:
            raise IndexError(f"frame index must be >= 0, got {index}")
        segment, t = divmod(int(index), self.segment_frames)
        img, spots, mask = self._view(segment, t)
        if segment > 0 and t < self.fade_frames:
            weight = smoothstep((t + 1) / (self.fade_frames + 1))  # of the new scene
            old_img, old_spots, old_mask = self._view(segment - 1, t + self.segment_frames)
            img = cv2.addWeighted(old_img, 1.0 - weight, img, weight, 0.0)
            spots = cv2.addWeighted(old_spots, 1.0 - weight, spots, weight, 0.0)
            if weight < 0.5:
                mask = old_mask
        img = _add_highlights(cv2.multiply(img, self._optics, scale=1 / 255), spots)
        if self.config.scene.noise_sigma > 0:
            img = self._noise.apply(img, np.random.default_rng([self.seed, 2, index]))
        if self.config.border:
            img = cv2.bitwise_and(img, img, mask=self._fov)
        _, mask = cv2.threshold(mask, 127, 255, cv2.THRESH_BINARY)
        return img, cv2.bitwise_and(mask, self._fov)

    def frames(self, count: int, start: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Frames start .. start + count - 1, in order."""
        for i in range(start, start + count):
            yield self.frame(i)
