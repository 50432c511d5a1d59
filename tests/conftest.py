"""Shared fixtures: small real files made on the fly, and the optional shared data set."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def write_pair(images: Path, masks: Path, stem: str, size=(48, 64), ext=".png", mask_ext=".png", seed=0):
    """One image with a bright disc and its exact mask; returns the mask as {0,1}."""
    rng = np.random.default_rng(seed)
    h, w = size
    image = rng.integers(40, 90, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), np.uint8)
    center = (int(rng.integers(w // 4, 3 * w // 4)), int(rng.integers(h // 4, 3 * h // 4)))
    cv2.circle(mask, center, max(3, min(h, w) // 6), 255, -1)
    image[mask > 0] = (200, 180, 220)
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(images / f"{stem}{ext}"), image)
    cv2.imwrite(str(masks / f"{stem}{mask_ext}"), mask)
    return (mask > 0).astype(np.uint8)


@pytest.fixture
def kvasir_dir(tmp_path: Path) -> Path:
    root = tmp_path / "kvasir"
    for i in range(20):
        write_pair(root / "images", root / "masks", f"img{i:02d}", ext=".jpg", mask_ext=".jpg", seed=i)
    return root


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "polypgen").is_dir():
        pytest.skip(f"real polyp data not present at {SHARED_DATA} (only in the development workspace)")
    return SHARED_DATA


@pytest.fixture
def make_pair():
    return write_pair
