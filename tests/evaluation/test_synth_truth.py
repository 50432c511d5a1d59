"""`polyp-rt synth --video --from-images` writes truth.json: the clip's hash and size, and one lesion
per still (two stills in a row are two polyps, however the frames run)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from polyp_rt.cli.main import main
from polyp_rt.evaluation.truth import TruthFolder, sha256_of


def stills(root: Path, polyps: list[bool]) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, polyp in enumerate(polyps):
        img = np.full((90, 120, 3), 40, np.uint8)
        mask = np.zeros((90, 120), np.uint8)
        if polyp:
            img[20:70, 30:90] = 230
            mask[20:70, 30:90] = 255
        cv2.imwrite(str(root / "images" / f"s{i}.png"), img)
        cv2.imwrite(str(root / "masks" / f"s{i}.png"), mask)
    return root


def test_a_clip_over_stills_names_its_video_and_one_lesion_per_still(tmp_path):
    data = stills(tmp_path / "data", [True, True, False, True])
    clip = tmp_path / "clip.mp4"
    args = [
        "synth",
        "--video",
        str(clip),
        "--from-images",
        str(data),
        "--fps",
        "5",
        "--seconds-per-image",
        "1",
    ]
    assert main([*args, "--width", "64", "--height", "48"]) == 0
    info = json.loads((tmp_path / "clip_masks" / "truth.json").read_text())
    assert info["video"] == "clip.mp4" and info["sha256"] == sha256_of(clip)
    assert (info["frames"], info["fps"], info["width"], info["height"]) == (20, 5.0, 64, 48)
    # 5 frames a still; the large square stays in view through every pan: stills 0, 1 and 3
    assert info["lesions"] == [[0, 4], [5, 9], [15, 19]]
    assert TruthFolder(tmp_path / "clip_masks").info.lesions == ((0, 4), (5, 9), (15, 19))


def test_only_the_polyp_free_stills(tmp_path):
    data = stills(tmp_path / "data", [True, False, False])
    clip = tmp_path / "quiet.mp4"
    args = ["synth", "--video", str(clip), "--from-images", str(data), "--pairs", "empty", "--fps", "5"]
    assert main([*args, "--seconds-per-image", "1", "--width", "64", "--height", "48"]) == 0
    info = json.loads((tmp_path / "quiet_masks" / "truth.json").read_text())
    assert info["frames"] == 10 and info["lesions"] == []
