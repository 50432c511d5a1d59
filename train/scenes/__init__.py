"""Synthetic colonoscopy-like scenes: still images and a moving camera, with exact polyp masks.

Used by the tests, for the demo clip and behind the live `synthetic:` source, so it is
numpy + OpenCV only (no per-pixel Python loops, no torch) and fast enough for real time.

A scene is rendered from a height field and an albedo:
- mucosa (tissue.py): pink-red albedo with low-frequency colour noise and a vessel network,
  on a height field of haustral folds (rings around the lumen, perspective-spaced) and bumps;
- lighting (tissue.py): the light sits at the camera, so brightness falls off with depth (a
  dark lumen) and with surface slope (fold creases and polyp rims darken);
- polyps (polyps.py): lumpy closed outlines (a few harmonics), a dome height profile and their
  own, slightly different tint and mottled texture. The mask is exactly the filled outline;
- then (render.py, clip.py) specular highlights (also on polyps; the mask is unchanged),
  optical blur, vignetting, sensor noise and, sometimes, the black octagonal border of
  Kvasir frames (the mask is zero under the border, where nothing of the polyp shows).

Randomness comes only from `numpy.random.default_rng` seeded by the caller: the same
seed gives byte-identical images and masks whatever the global RNG state.
Images are RGB uint8 HxWx3; masks uint8 HxW with values {0, 255}.
"""

from polyp_rt.train.scenes.clip import SyntheticClip, warp
from polyp_rt.train.scenes.config import Clip, ClipConfig, SceneConfig, Size, size_wh
from polyp_rt.train.scenes.fields import smoothstep
from polyp_rt.train.scenes.render import synth_image

__all__ = [
    "Clip",
    "ClipConfig",
    "SceneConfig",
    "Size",
    "SyntheticClip",
    "size_wh",
    "smoothstep",
    "synth_image",
    "warp",
]
