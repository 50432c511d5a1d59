"""A scene before the optics (tissue, vessels, polyps, glints), and the still images made of it."""

from __future__ import annotations

import cv2
import numpy as np

from polyp_rt.train.scenes.config import SceneConfig, Size, size_wh
from polyp_rt.train.scenes.fields import (
    F32,
    add_highlights,
    add_tiled_noise,
    as_rng,
    border_mask,
    value_noise,
    vignette,
)
from polyp_rt.train.scenes.polyps import Surface, place_polyps, polyp_count
from polyp_rt.train.scenes.tissue import Grid, Lumen, light_albedo, mucosa, tissue


def render_scene(
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
    grid = Grid.over(rng, w, h, unit)
    lumen = Lumen.draw(rng, w, h, unit, cfg.p_lumen)
    surface = tissue(grid, lumen, unit)
    base, albedo, lines = mucosa(grid, unit)

    img = grid.full(light_albedo(albedo, surface.lit))
    t1, t2, boost = (grid.full(a) for a in (*lines, surface.boost))
    vessels = np.maximum(1.0 - np.abs(t1), 0.0)
    vessels += np.maximum(1.0 - np.abs(t2), 0.0)
    glint = value_noise(rng, w, h, max(unit / 80, 1.5))
    texture = 1.0 + 0.025 * glint  # fine granular texture
    img *= cv2.merge([texture * (1.0 - F32(k) * vessels) for k in (0.15, 0.35, 0.28)])

    # Polyps, on top of the mucosa.
    painted = Surface(
        img, boost, glint, np.zeros((h, w), np.uint8), surface.coarse(grid), base, surface.light
    )
    count = n_polyps if sites is None else len(sites)
    place_polyps(rng, painted, count, sites, lumen, unit, cfg.polyp_radius)

    # Specular highlights: glints, clustered on wet patches and crests facing the lens.
    spots = np.maximum(glint + 1.6 * boost - F32(4.0), 0.0)
    spots = cv2.convertScaleAbs(spots, alpha=2.0 * 255)  # saturates at 255
    spots = cv2.GaussianBlur(spots, (0, 0), max(unit / 320, 0.6))
    return img, spots, painted.mask


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
    vig = cv2.convertScaleAbs(vignette(w, h, rng.uniform(0.25, 0.5)), alpha=255.0)
    if border:
        fov = border_mask(w, h, rng.uniform(0.08, 0.16))
        vig = cv2.bitwise_and(vig, fov)
        mask = cv2.bitwise_and(mask, fov)
    out = cv2.multiply(out, cv2.merge([vig, vig, vig]), scale=1 / 255)
    out = add_highlights(out, spots)
    if cfg.noise_sigma > 0:
        out = add_tiled_noise(out, rng, cfg.noise_sigma)
    if border:
        out = cv2.bitwise_and(out, out, mask=fov)
    return out, mask


def synth_image(
    rng_or_seed: np.random.Generator | int, size: Size, config: SceneConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One colonoscopy-like RGB image (uint8 HxWx3) and its exact polyp mask (uint8 {0,255}).

    `size` is an int (square) or (width, height). An image holds 0-3 polyps; with the
    default config about 15% hold none (an all-zero mask).
    """
    cfg = config or SceneConfig()
    rng = as_rng(rng_or_seed)
    w, h = size_wh(size)
    unit = float(min(w, h))
    n = polyp_count(rng, cfg.p_empty, cfg.max_polyps)
    border = rng.random() < cfg.p_border
    img, spots, mask = render_scene(rng, w, h, n, unit, cfg)
    return _finish(img, spots, mask, rng, unit, cfg, border)
