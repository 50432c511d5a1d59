"""scripts/hard_negatives.py: the alerted frames of a polyp-free clip, every K-th of each run,
as images with empty masks; worked out by hand on a 12-frame clip."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from tests.scripts import load_script


@pytest.fixture
def clip_and_masks(tmp_path):
    clip, masks = tmp_path / "free.mp4", tmp_path / "masks"
    masks.mkdir()
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(12):
            rgb = np.full((48, 64, 3), 20 * i, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode())
    for i in range(12):
        mask = np.zeros((48, 64), np.uint8)
        if i in (2, 3, 4, 5, 6, 9):
            mask[10:20, 10:20] = 255  # 100 of 3,072 pixels: over the 0.2 % alert threshold
        if i == 11:
            mask[0:2, 0:2] = 255  # 4 pixels (0.13 %): under it, no alert
        cv2.imwrite(str(masks / f"{i:06d}.png"), mask)
    return clip, masks


def test_every_kth_frame_of_each_alerted_run_is_kept_with_an_empty_mask(clip_and_masks, tmp_path):
    clip, masks = clip_and_masks
    out = tmp_path / "negatives"
    frames, alerted, kept = load_script("hard_negatives").mine(clip, masks, out, every=2)
    # runs 2-6 and 9; every 2nd of a run from its first: 2, 4, 6 and 9
    assert (frames, alerted, kept) == (12, 6, 4)
    names = sorted(p.stem for p in (out / "images").iterdir())
    assert names == [f"free_{i:06d}" for i in (2, 4, 6, 9)]
    for name in names:
        image = cv2.imread(str(out / "images" / f"{name}.jpg"))
        mask = cv2.imread(str(out / "masks" / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
        assert image.shape == (48, 64, 3) and mask.shape == (48, 64) and not mask.any()
    frame_4 = cv2.imread(str(out / "images" / "free_000004.jpg"))
    assert abs(float(frame_4.mean()) - 80) < 6  # the clip's own frame 4 (grey 80), not another


def test_masks_of_another_clip_are_refused(clip_and_masks, tmp_path):
    clip, masks = clip_and_masks
    (masks / "000011.png").unlink()
    with pytest.raises(SystemExit, match="no mask for frame 11"):
        load_script("hard_negatives").mine(clip, masks, tmp_path / "negatives", every=2)


def test_runs_shorter_than_min_run_are_left_out(clip_and_masks, tmp_path):
    clip, masks = clip_and_masks
    out = tmp_path / "negatives"
    frames, alerted, kept = load_script("hard_negatives").mine(clip, masks, out, every=2, min_run=3)
    # run 2-6 (5 frames) is kept at 2, 4, 6; run 9 (1 frame) is shorter than 3 and left out
    assert (frames, alerted, kept) == (12, 6, 3)
    assert sorted(p.stem for p in (out / "images").iterdir()) == [f"free_{i:06d}" for i in (2, 4, 6)]
