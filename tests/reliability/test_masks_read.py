"""Masks read as they are meant (round three): any bit depth by value, an EXIF orientation applied
to image and mask alike (that is: to neither), and data sets that cannot teach or choose anything
said so. Real PNG/JPEG files written in the test."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from polyp_rt.cli.main import main
from polyp_rt.train.data import Pair, check_pair, read_mask, read_rgb


@pytest.mark.parametrize("value", [65280, 256, 1, 65535])
def test_a_16_bit_mask_is_read_by_value(tmp_path, value):
    mask = np.zeros((48, 64), np.uint16)
    mask[10:30, 20:40] = value  # 400 polyp pixels
    path = tmp_path / "m.png"
    cv2.imwrite(str(path), mask)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16  # really 16-bit on disk
    got = read_mask(path)
    assert got.dtype == np.uint8 and int(got.sum()) == 400 and got[10:30, 20:40].all()


def test_an_8_bit_mask_of_0_and_1_or_255_is_unchanged(tmp_path):
    for top in (1, 255):
        mask = np.zeros((8, 8), np.uint8)
        mask[2:5, 2:5] = top
        cv2.imwrite(str(tmp_path / "m.png"), mask)
        assert int(read_mask(tmp_path / "m.png").sum()) == 9


def exif_rotated_jpeg(path, rgb: np.ndarray, orientation: int = 6) -> None:
    from PIL import Image

    image = Image.fromarray(rgb)
    exif = image.getexif()
    exif[0x0112] = orientation  # Orientation: 6 = shown rotated 90 degrees clockwise
    image.save(path, exif=exif.tobytes(), quality=95)


def test_an_exif_orientation_leaves_image_and_mask_aligned(tmp_path):
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, :16] = (220, 200, 210)  # a bright band on the left of the stored pixels
    mask = np.zeros((48, 64), np.uint8)
    mask[:, :16] = 255  # drawn on the same stored pixels
    exif_rotated_jpeg(tmp_path / "a.jpg", rgb)
    cv2.imwrite(str(tmp_path / "a.png"), mask)
    # a plain imread turns the image upright (64x48) but not the mask: the pair no longer fits
    assert cv2.imread(str(tmp_path / "a.jpg")).shape[:2] == (64, 48)
    image = read_rgb(tmp_path / "a.jpg")
    assert image.shape[:2] == (48, 64)
    assert check_pair(Pair(tmp_path / "a.jpg", tmp_path / "a.png")).polyp
    bright = image.mean(axis=2) > 128
    assert (bright == (read_mask(tmp_path / "a.png") > 0)).mean() > 0.99  # the band is where the mask is


def test_a_data_set_without_a_polyp_in_validation_is_refused_in_one_line(tmp_path, make_pair, capsys):
    root = tmp_path / "d"
    for split in ("train", "val", "test"):
        for i in range(2):
            truth = make_pair(root / split / "images", root / split / "masks", f"{split}{i}", seed=i)
            if split == "val":
                cv2.imwrite(str(root / split / "masks" / f"{split}{i}.png"), np.zeros_like(truth))
    args = ["train", "--data", str(root), "--out", str(tmp_path / "run"), "--size", "64", "--epochs", "1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no image of its validation split (2 images) shows a polyp" in err
    assert not (tmp_path / "run").exists()
