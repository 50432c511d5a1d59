import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from polyp_rt.core.errors import DataError, InputFileError
from polyp_rt.train.data import count_images, detect_layout, load_splits, read_mask, scan_folder


def test_kvasir_layout_with_jpeg_masks(kvasir_dir):
    scan = scan_folder(kvasir_dir)
    assert scan.layout == "kvasir"
    assert len(scan.pairs) == 20
    mask = read_mask(scan.pairs[0].mask)
    assert set(np.unique(mask)) <= {0, 1}  # noisy JPEG mask thresholded at 128
    assert mask.sum() > 0


def test_cvc_layout_tif(tmp_path, make_pair):
    root = tmp_path / "cvc"
    for i in range(1, 6):
        make_pair(root / "Original", root / "Ground Truth", str(i), ext=".tif", mask_ext=".tif", seed=i)
    assert detect_layout(root) == "cvc"
    scan = scan_folder(root)
    assert [p.name for p in scan.pairs] == ["1", "2", "3", "4", "5"]
    truth = make_pair(tmp_path / "x", tmp_path / "y", "z", seed=3)
    assert np.array_equal(read_mask(root / "Ground Truth" / "3.tif"), truth)


def test_presplit_layout_is_used_as_given(tmp_path, make_pair):
    for split, n in (("train", 4), ("val", 2), ("test", 3)):
        for i in range(n):
            make_pair(tmp_path / split / "images", tmp_path / split / "masks", f"{split}{i}", seed=i)
    splits = load_splits(tmp_path)
    assert splits.how == "pre-split folders"
    assert {k: len(v) for k, v in splits.pairs.items()} == {"train": 4, "val": 2, "test": 3}


def test_presplit_layout_given_as_a_relative_path(tmp_path, make_pair, monkeypatch):
    for split in ("train", "val", "test"):
        make_pair(tmp_path / "d" / split / "images", tmp_path / "d" / split / "masks", split)
    monkeypatch.chdir(tmp_path)
    assert count_images(Path("d")) == 3
    assert [len(v) for v in load_splits(Path("d")).pairs.values()] == [1, 1, 1]


def test_seeded_split_is_reproducible_and_70_15_15(kvasir_dir, tmp_path):
    a, b = load_splits(kvasir_dir, seed=3), load_splits(kvasir_dir, seed=3)
    assert a.pairs == b.pairs
    assert {k: len(v) for k, v in a.pairs.items()} == {"train": 14, "val": 3, "test": 3}
    assert load_splits(kvasir_dir, seed=4).pairs != a.pairs
    names = [p.name for part in a.pairs.values() for p in part]
    assert len(set(names)) == 20
    split_file = tmp_path / "split.json"
    split_file.write_text(json.dumps(a.to_json()))
    again = load_splits(kvasir_dir, seed=99, split_file=split_file)
    assert again.pairs == a.pairs


def test_image_without_mask_names_the_file(kvasir_dir):
    (kvasir_dir / "masks" / "img03.jpg").unlink()
    with pytest.raises(DataError, match=r"img03\.jpg: image without a mask"):
        scan_folder(kvasir_dir)
    scan = scan_folder(kvasir_dir, skip_bad=True)
    assert len(scan.pairs) == 19
    assert len(scan.skipped) == 1 and "img03" in scan.skipped[0][0]


def test_mask_without_image(kvasir_dir):
    (kvasir_dir / "images" / "img05.jpg").unlink()
    with pytest.raises(DataError, match=r"img05\.jpg: mask without an image"):
        scan_folder(kvasir_dir)
    assert len(scan_folder(kvasir_dir, skip_bad=True).skipped) == 1


def test_unreadable_image(kvasir_dir):
    (kvasir_dir / "images" / "img07.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError, match=r"img07\.jpg: cannot read this image"):
        scan_folder(kvasir_dir)
    scan = scan_folder(kvasir_dir, skip_bad=True)
    assert len(scan.pairs) == 19 and "cannot read" in scan.skipped[0][1]


def test_size_mismatch(kvasir_dir):
    cv2.imwrite(str(kvasir_dir / "masks" / "img09.jpg"), np.zeros((10, 10), np.uint8))
    with pytest.raises(DataError, match=r"img09\.jpg: mask is 10x10 but its image img09\.jpg is 64x48"):
        scan_folder(kvasir_dir)


def test_non_binary_png_mask_is_refused(tmp_path, make_pair):
    root = tmp_path / "d"
    make_pair(root / "images", root / "masks", "a")
    ramp = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (48, 1))
    cv2.imwrite(str(root / "masks" / "a.png"), ramp)
    with pytest.raises(DataError, match="mask is not binary"):
        scan_folder(root)


def test_binary_01_png_mask_is_accepted(tmp_path, make_pair):
    root = tmp_path / "d"
    truth = make_pair(root / "images", root / "masks", "a")
    cv2.imwrite(str(root / "masks" / "a.png"), truth)  # values 0/1
    assert np.array_equal(read_mask(root / "masks" / "a.png"), truth)


def test_empty_and_missing_folders(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        detect_layout(tmp_path / "nope")
    with pytest.raises(DataError, match="no images/"):
        detect_layout(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError, match="no usable image/mask pairs"):
        scan_folder(tmp_path)


def test_real_polypgen_layout(shared_data: Path):
    splits = load_splits(shared_data / "polypgen")
    assert splits.how == "pre-split folders"
    assert {k: len(v) for k, v in splits.pairs.items()} == {"train": 1237, "val": 150, "test": 150}
