"""Synthetic colonoscopy data: determinism, exact masks, the dataset writer, the clips."""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
import pytest

from polyp_rt.core.errors import DataError
from polyp_rt.train.scenes import ClipConfig, SceneConfig, SyntheticClip, synth_image
from polyp_rt.train.scenes.render import render_scene
from polyp_rt.train.synthetic import PanZoomClip, write_clip_masks, write_dataset


def _binary(mask: np.ndarray) -> bool:
    return mask.dtype == np.uint8 and set(np.unique(mask).tolist()) <= {0, 255}


# --------------------------------------------------------------------------- stills


def test_same_seed_same_bytes_whatever_the_global_rng() -> None:
    np.random.seed(1)
    random.seed(1)
    a = synth_image(7, (96, 64))
    np.random.seed(2)
    random.seed(2)
    np.random.random(100)
    b = synth_image(7, (96, 64))
    c = synth_image(np.random.default_rng(7), (96, 64))
    for x, y, z in zip(a, b, c, strict=True):
        assert x.tobytes() == y.tobytes() == z.tobytes()


def test_different_seeds_differ() -> None:
    a, _ = synth_image(1, 64)
    b, _ = synth_image(2, 64)
    assert not np.array_equal(a, b)


def test_a_generator_argument_is_advanced() -> None:
    rng = np.random.default_rng(3)
    first, _ = synth_image(rng, 48)
    second, _ = synth_image(rng, 48)
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("size, shape", [(64, (64, 64)), ((80, 50), (50, 80)), ((33, 21), (21, 33))])
def test_shapes_and_types(size: int | tuple[int, int], shape: tuple[int, int]) -> None:
    rgb, mask = synth_image(0, size)
    assert rgb.shape == (*shape, 3) and rgb.dtype == np.uint8
    assert mask.shape == shape and _binary(mask)


def test_polyp_images_have_masks_and_empty_images_do_not() -> None:
    with_polyps = SceneConfig(p_empty=0.0)
    without = SceneConfig(p_empty=1.0)
    for seed in range(12):
        _, mask = synth_image(seed, (72, 56), with_polyps)
        assert _binary(mask) and mask.any(), seed
        _, empty = synth_image(seed, (72, 56), without)
        assert not empty.any(), seed


def test_default_mix_has_some_empty_images() -> None:
    empty = [not synth_image(seed, 40)[1].any() for seed in range(60)]
    assert 0 < sum(empty) < 30  # about 15% hold no polyp


def test_mask_is_exactly_where_the_polyp_was_drawn() -> None:
    """Same scene with and without a polyp: they differ only inside the mask, and there."""
    w, h = 96, 80
    site = np.array([[w / 2, h / 2]])
    cfg = SceneConfig()
    plain, plain_spots, none = render_scene(np.random.default_rng(5), w, h, 0, min(w, h), cfg, sites=site[:0])
    img, spots, mask = render_scene(np.random.default_rng(5), w, h, 1, min(w, h), cfg, sites=site)
    assert not none.any() and _binary(mask) and mask.any()
    changed = np.any(img != plain, axis=2)
    assert not (changed & (mask == 0)).any(), "pixels outside the mask changed"
    assert changed[mask > 0].mean() > 0.95, "mask pixels that show no polyp"
    # Highlights may sit on polyps; their glow spills a pixel or two, no further.
    near = cv2.dilate(mask, np.ones((7, 7), np.uint8)) > 0
    assert not ((spots != plain_spots) & ~near).any()


# --------------------------------------------------------------------------- dataset


def test_write_dataset(tmp_path: Path) -> None:
    calls: list[int] = []
    n = write_dataset(tmp_path / "ds", 5, (64, 48), seed=3, progress=calls.append)
    assert n == 5 and calls == [1] * 5
    images = sorted((tmp_path / "ds" / "images").iterdir())
    masks = sorted((tmp_path / "ds" / "masks").iterdir())
    assert [p.name for p in images] == [f"{i:05d}.jpg" for i in range(5)]
    assert [p.stem for p in masks] == [p.stem for p in images]
    for i, (image_path, mask_path) in enumerate(zip(images, masks, strict=True)):
        rgb, mask = synth_image(np.random.default_rng([3, i]), (64, 48))
        read = cv2.imread(str(image_path))
        assert read is not None and read.shape == (48, 64, 3)
        # JPEG quality 95: close to the original, not equal.
        diff = np.abs(read.astype(int) - cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR).astype(int))
        assert diff.mean() < 4
        assert np.array_equal(cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED), mask)


def test_write_dataset_of_nothing(tmp_path: Path) -> None:
    assert write_dataset(tmp_path, 0, 32) == 0
    with pytest.raises(ValueError):
        write_dataset(tmp_path, -1, 32)


# --------------------------------------------------------------------------- SyntheticClip


def _small_clip(seed: int = 0, width: int = 96, height: int = 72) -> SyntheticClip:
    return SyntheticClip(width, height, seed=seed, fps=10.0)


def test_clip_random_access_equals_sequential() -> None:
    clip = _small_clip()
    seg = clip.segment_frames
    indices = [0, 1, seg - 1, seg, seg + 1, 2 * seg + 3, 5]  # crossing crossfades
    sequential = list(clip.frames(2 * seg + 4))
    fresh = _small_clip()
    for i in reversed(indices):
        img, mask = fresh.frame(i)
        assert np.array_equal(img, sequential[i][0]), i
        assert np.array_equal(mask, sequential[i][1]), i


def test_clip_seeds_and_time() -> None:
    a, b = _small_clip(seed=1), _small_clip(seed=2)
    assert not np.array_equal(a.frame(0)[0], b.frame(0)[0])
    assert np.array_equal(a.frame(3)[0], _small_clip(seed=1).frame(3)[0])
    assert not np.array_equal(a.frame(0)[0], a.frame(5)[0])


def test_clip_has_polyp_and_polyp_free_stretches() -> None:
    clip = SyntheticClip(64, 48, seed=0, fps=10.0)
    present = []
    for _img, mask in clip.frames(300):
        assert _binary(mask)
        present.append(bool(mask.any()))
    assert any(present) and not all(present)


def test_clip_odd_size() -> None:
    clip = SyntheticClip(321, 239, seed=4, config=ClipConfig(segment_seconds=1.0))
    for i in (0, 29, 31):
        img, mask = clip.frame(i)
        assert img.shape == (239, 321, 3) and img.dtype == np.uint8
        assert mask.shape == (239, 321) and _binary(mask)


def test_clip_rejects_negative_index() -> None:
    with pytest.raises(IndexError):
        _small_clip().frame(-1)


def test_write_clip_masks(tmp_path: Path) -> None:
    clip = _small_clip(seed=3)
    calls: list[int] = []
    assert write_clip_masks(clip, 4, tmp_path / "gt", progress=calls.append) == 4
    assert calls == [1] * 4
    names = sorted(p.name for p in (tmp_path / "gt").iterdir())
    assert names == [f"{i:06d}.png" for i in range(4)]
    for i in range(4):
        read = cv2.imread(str(tmp_path / "gt" / f"{i:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(read, clip.frame(i)[1])


# --------------------------------------------------------------------------- PanZoomClip


def _kvasir_folder(root: Path, sizes: list[tuple[int, int]], mask_ext: str = ".png") -> Path:
    """Dark images with one bright square each; the mask is the square."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, (w, h) in enumerate(sizes):
        img = np.full((h, w, 3), 30, np.uint8)
        mask = np.zeros((h, w), np.uint8)
        x, y, s = w // 2 - 12 + 5 * i, h // 2 - 10, 24
        img[y : y + s, x : x + s] = 250
        mask[y : y + s, x : x + s] = 255
        cv2.imwrite(str(root / "images" / f"img{i}.png"), img)
        ext = mask_ext if i == 0 else ".png"
        cv2.imwrite(str(root / "masks" / f"img{i}{ext}"), mask)
    return root


def test_pan_zoom_mask_moves_with_the_image(tmp_path: Path) -> None:
    folder = _kvasir_folder(tmp_path / "k", [(200, 150), (160, 160), (240, 130)], ".jpg")
    clip = PanZoomClip(folder, 96, 80, seed=1, fps=10.0, seconds_per_image=1.0)
    assert len(clip) == 30
    centres = []
    for img, mask in clip.frames():
        assert img.shape == (80, 96, 3) and mask.shape == (80, 96) and _binary(mask)
        assert mask.any()
        bright = img.max(axis=2) > 140
        inside, outside = bright[mask > 0], bright[mask == 0]
        assert inside.mean() > 0.9 and outside.mean() < 0.05
        ys, xs = np.nonzero(mask)
        centres.append((xs.mean(), ys.mean(), xs.size))
    assert len({tuple(np.round(c, 1)) for c in centres[:10]}) > 5  # it pans and zooms
    with pytest.raises(IndexError):
        clip.frame(len(clip))


def test_pan_zoom_is_deterministic(tmp_path: Path) -> None:
    folder = _kvasir_folder(tmp_path / "k", [(120, 90), (90, 120)])
    a = PanZoomClip(folder, 64, 48, seed=2, fps=5.0)
    b = PanZoomClip(folder, 64, 48, seed=2, fps=5.0)
    for i in (7, 0, 15, 3):
        assert np.array_equal(a.frame(i)[0], b.frame(i)[0])
        assert np.array_equal(a.frame(i)[1], b.frame(i)[1])


def test_pan_zoom_missing_mask(tmp_path: Path) -> None:
    folder = _kvasir_folder(tmp_path / "k", [(64, 64), (64, 64)])
    (folder / "masks" / "img1.png").unlink()
    with pytest.raises(DataError, match="img1"):
        PanZoomClip(folder, 32, 32)


def test_pan_zoom_not_a_kvasir_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no images/ [+] masks/"):
        PanZoomClip(tmp_path, 32, 32)
    (tmp_path / "images").mkdir()
    with pytest.raises(DataError):
        PanZoomClip(tmp_path, 32, 32)


def test_pan_zoom_over_real_kvasir(shared_data: Path) -> None:
    kvasir = shared_data / "kvasir-seg-5"
    if not kvasir.is_dir():
        pytest.skip(f"real Kvasir sample not present at {kvasir}")
    clip = PanZoomClip(kvasir, 160, 128, seed=0, fps=5.0, seconds_per_image=1.0)
    assert len(clip.pairs) > 0 and len(clip) == 5 * len(clip.pairs)
    seen = 0
    for img, mask in clip.frames():
        assert img.shape == (128, 160, 3) and _binary(mask)
        seen += bool(mask.any())
    assert seen > 0


def test_pan_zoom_takes_several_folders_and_picks_polyp_or_empty_pairs(tmp_path: Path) -> None:
    a = _kvasir_folder(tmp_path / "a", [(120, 90), (90, 120)])
    b = _kvasir_folder(tmp_path / "b", [(100, 100)])
    cv2.imwrite(str(b / "masks" / "img0.png"), np.zeros((100, 100), np.uint8))  # polyp-free
    clip = PanZoomClip([a, b], 64, 48, fps=5.0, seconds_per_image=1.0)
    assert [p.image.parent.parent.name for p in clip.pairs] == ["a", "a", "b"] and len(clip) == 15
    assert [p.image.parent.parent.name for p in PanZoomClip([a, b], 64, 48, pairs="polyp").pairs] == [
        "a",
        "a",
    ]
    empty = PanZoomClip([a, b], 64, 48, pairs="empty")
    assert [p.image for p in empty.pairs] == [b / "images" / "img0.png"]
    assert not any(mask.any() for _, mask in empty.frames())
    with pytest.raises(DataError, match="no image/mask pairs with an empty mask"):
        PanZoomClip(a, 64, 48, pairs="empty")


def test_pan_zoom_with_dark_gaps_between_the_stills(tmp_path: Path) -> None:
    folder = _kvasir_folder(tmp_path / "k", [(120, 90), (90, 120)])
    clip = PanZoomClip(folder, 64, 48, fps=5.0, seconds_per_image=1.0, gap_seconds=0.4)
    assert (clip.period, len(clip)) == (7, 12)  # 5 frames, 2 dark, 5 frames
    plain = PanZoomClip(folder, 64, 48, fps=5.0, seconds_per_image=1.0)
    for i, j in [(0, 0), (4, 4), (7, 5), (11, 9)]:
        assert np.array_equal(clip.frame(i)[0], plain.frame(j)[0])
    for i in (5, 6):
        img, mask = clip.frame(i)
        assert img.max() < 20 and not mask.any()
