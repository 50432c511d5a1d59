"""A synthetic colonoscopy video: a camera drifting, zooming and rolling over rendered scenes."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from polyp_rt.train.scenes.config import ClipConfig, size_wh
from polyp_rt.train.scenes.fields import NoisePlane, add_highlights, border_mask, smoothstep, vignette
from polyp_rt.train.scenes.polyps import polyp_count
from polyp_rt.train.scenes.render import render_scene


def warp(image: np.ndarray, m: np.ndarray, w: int, h: int, interpolation: int) -> np.ndarray:
    """`image` seen through the frame-to-image map `m` (2x3), as a w x h frame; edges mirrored."""
    flags = interpolation | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(image, m, (w, h), flags=flags, borderMode=cv2.BORDER_REFLECT_101)


@dataclass
class World:
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
        vig = vignette(self.width, self.height, rng.uniform(0.3, 0.45))
        optics = cv2.convertScaleAbs(vig, alpha=255.0)
        self._fov = np.full((self.height, self.width), 255, np.uint8)
        if cfg.border:
            self._fov = border_mask(self.width, self.height, rng.uniform(0.08, 0.14))
            optics = cv2.bitwise_and(optics, self._fov)
        self._optics = cv2.merge([optics, optics, optics])
        self._noise = NoisePlane(rng, self.width, self.height, cfg.scene.noise_sigma)
        self._worlds: OrderedDict[int, World] = OrderedDict()

    def _world(self, segment: int) -> World:
        world = self._worlds.get(segment)
        if world is not None:
            self._worlds.move_to_end(segment)
            return world
        world = self._make_world(segment)
        self._worlds[segment] = world
        if len(self._worlds) > self._CACHE:
            self._worlds.popitem(last=False)
        return world

    def _make_world(self, segment: int) -> World:
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
        n = polyp_count(rng, cfg.p_empty_segment, cfg.scene.max_polyps)
        along = rng.uniform(0.0, 1.0, (n, 1))
        offset = rng.uniform(-0.5, 0.5, (n, 2)) * (w, h)
        sites = (start + (end - start) * along + offset) * k
        unit = min(w, h) * k
        img, spots, mask = render_scene(rng, ww, wh, n, unit, cfg.scene, sites=sites)
        image = cv2.convertScaleAbs(img, alpha=255.0)
        image = cv2.GaussianBlur(image, (0, 0), max(unit / 600, 0.5))
        return World(image, spots, mask, k, start, end, zoom, roll, wobble)

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
        img = add_highlights(cv2.multiply(img, self._optics, scale=1 / 255), spots)
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
