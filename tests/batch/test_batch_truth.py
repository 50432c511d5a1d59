"""`polyp-rt batch --truth DIR` on a real embedded Ray, a real H.264 clip and a real ONNX Runtime model:
the per-video and pooled video metrics in summary.csv, the closing table and report.html (rendered in
headless Chromium), a changed truth scored again without the model, and truths that do not fit.

The clip is tests/evaluation's scripted one (100 frames at 25 fps, 4.0 s; its figures are worked
out by hand in tests/evaluation/test_scorer.py); `brightness_onnx` predicts what it scripts:

    truth (S):     lesion A 10-29, lesion B 60-69 + 73-79          (37 polyp frames, 63 polyp-free)
    predictions:   S 13-32, F 40, F 45, F 50-51, W 60-62, S 64-69, S 73-79, F 83, F 86-98   (54 frames)

The batch draws through gate 3:0 (a region is drawn from its third frame): S 15-32, W 62, S 66-69,
S 75-79, F 88-98 (39 frames). "clear.mp4" is the same clip with a polyp-free truth: every alert is a
false alarm.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from polyp_rt.batch.cluster import import_ray, start_ray
from polyp_rt.core.errors import PolypRtError

try:
    import_ray(local=True)
except PolypRtError as missing:
    pytest.skip(str(missing), allow_module_level=True)

from polyp_rt.cli.main import main  # noqa: E402
from polyp_rt.evaluation.truth import TruthInfo, sha256_of, write_truth_info  # noqa: E402
from polyp_rt.train.synthetic import save_frame_mask  # noqa: E402
from tests.batch.conftest import summary_rows  # noqa: E402
from tests.chromium import cdp  # noqa: E402
from tests.evaluation.conftest import FRAMES, write_brightness_onnx, write_scripted_clip  # noqa: E402

GATE = ["--alert-min-frames", "3", "--alert-hold", "0"]


@pytest.fixture(scope="module")
def local_ray():
    module = import_ray(local=True)
    start_ray(module, None, num_cpus=2)
    yield
    module.shutdown()


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    """The scripted clip with its truth, and the model."""
    root = tmp_path_factory.mktemp("material")
    clip = write_scripted_clip(root)
    return clip, clip.with_name("scripted_masks"), write_brightness_onnx(root / "brightness.onnx")


def batch(archive: Path, out: Path, model: Path, truth: Path, *more: str) -> int:
    args = ["batch", str(archive), "--out", str(out), "--model", str(model), "--truth", str(truth)]
    return main([*args, *GATE, *more])


def empty_truth(folder: Path, frames: int = FRAMES, size: tuple[int, int] = (128, 160)) -> None:
    folder.mkdir(parents=True)
    for i in range(frames):
        save_frame_mask(folder, i, np.zeros(size, np.uint8))


@pytest.fixture
def archive(tmp_path, material):
    """scripted.mp4 (its truth as DIR/scripted/), clear.mp4 (a polyp-free truth as DIR/clear_masks/,
    as synth names it), untruthed.mp4 (none); DIR/other/ pairs with no video."""
    clip, masks, _ = material
    videos, truth = tmp_path / "videos", tmp_path / "truth"
    videos.mkdir()
    for name in ("scripted", "clear", "untruthed"):
        shutil.copy(clip, videos / f"{name}.mp4")
    shutil.copytree(masks, truth / "scripted")
    empty_truth(truth / "clear_masks")
    empty_truth(truth / "other")
    return videos, truth


def test_batch_scores_each_video_and_the_archive(local_ray, archive, material, tmp_path, capsys, monkeypatch):
    videos, truth = archive
    monkeypatch.setenv("COLUMNS", "250")
    out = tmp_path / "out"
    assert batch(videos, out, material[2], truth, "--gates", "5:0") == 0
    printed = capsys.readouterr()
    rows = summary_rows(out)
    s, c, u = rows["scripted.mp4"], rows["clear.mp4"], rows["untruthed.mp4"]
    assert s["truth"] == str(truth / "scripted") and c["truth"] == str(truth / "clear_masks")
    # the model's masks: A found after 3 frames (120 ms), B after 4 (160 ms): median 140 ms; one
    # false alarm of 0.5 s or more (F 86-98, 0.52 s) in 4 s: 15 per minute; 30 of the 37 polyp frames
    # have an alert on the polyp, 42 of the 63 polyp-free frames have none
    assert (s["lesions"], s["found"], s["sensitivity"]) == ("2", "2", "1.0000")
    assert (s["first_detection_ms"], s["false_alarms_per_min"]) == ("140.0", "15.000")
    assert (s["frame_sensitivity"], s["frame_specificity"]) == (f"{30 / 37:.4f}", f"{42 / 63:.4f}")
    assert 0.68 < float(s["dice"]) <= 0.72  # 0.72 with exact squares; H.264 blurs the edges
    # drawn through gate 3:0: A at 15 (200 ms), B at 66 (240 ms); F 88-98 lasts 0.44 s: no alarm of
    # 0.5 s; polyp frames with a drawn alert on them: 15-29, 66-69, 75-79 = 24; polyp-free frames
    # with one: 30-32 and 88-98 = 14
    assert (s["gated_found"], s["gated_first_detection_ms"], s["gated_false_alarms_per_min"]) == (
        "2",
        "220.0",
        "0.000",
    )
    assert (s["gated_frame_sensitivity"], s["gated_frame_specificity"]) == (
        f"{24 / 37:.4f}",
        f"{49 / 63:.4f}",
    )
    # the polyp-free truth: no lesion; S 13-32 (0.8 s) and F 86-98 of 0.5 s or more: 30 per minute;
    # 46 frames without an alert (Dice 1 each, 0 elsewhere); drawn: only S 15-32 (0.72 s), 61 clear
    assert (c["lesions"], c["found"], c["sensitivity"], c["first_detection_ms"]) == ("0", "0", "", "")
    assert (c["false_alarms_per_min"], c["frame_sensitivity"], c["frame_specificity"]) == (
        "30.000",
        "",
        "0.4600",
    )
    assert c["dice"] == "0.4600" and c["gated_dice"] == "0.6100"
    assert (c["gated_false_alarms_per_min"], c["gated_frame_specificity"]) == ("15.000", "0.6100")
    assert all(u[k] == "" for k in ("truth", "truth_error", "lesions", "found", "dice", "gated_dice"))
    assert all(rows[n]["truth_error"] == "" and rows[n]["status"] == "ok" for n in rows)

    # pooled over the two videos with truth (8 s): 3 alarms of 0.5 s (22.5 per minute), drawn 1 (7.5);
    # polyp-free frames: 42 + 46 of 163 without an alert, drawn 49 + 61
    table = printed.out
    assert "CADe metrics" in table and "2 of 3 videos scored against their truth" in table
    assert "22.5/min (3)" in table and "7.5/min (1)" in table
    assert f"{88 / 163:.3f}" in table and f"{110 / 163:.3f}" in table
    assert "140 ms" in table and "220 ms" in table and "replayed: gate 5:0" in table
    assert "other" in printed.err and "pair with no video" in printed.err

    stored = json.loads((out / "scripted.mp4" / "metrics.json").read_text())
    assert stored["drawn"] == "gate 3:0" and set(stored["scores"]) == {"ungated", "gate 3:0", "gate 5:0"}
    assert stored["summary"]["scores"]["gate 3:0"]["lesions_found"] == 2
    assert len(list((out / "scripted.mp4" / "masks").glob("*.png"))) == FRAMES, "--truth keeps the masks"
    entry = json.loads((out / "manifest.json").read_text())["videos"]
    assert (
        len(entry["scripted.mp4"]["truth"]["truth"]["sha256"]) == 64
        and entry["untruthed.mp4"]["truth"] is None
    )

    page = (out / "report.html").read_text(encoding="utf-8")
    assert "CADe metrics" in page and page.count("<polyline") >= 4, "axes and a line per tau"
    assert "22.5/min (3)" in page and "7.5/min (1)" in page and 'href="#v' in page
    check_in_chromium(out / "report.html", tmp_path)


def check_in_chromium(page: Path, tmp_path: Path) -> None:
    if cdp.chromium() is None:
        pytest.skip("headless Chromium is not installed")
    shot, profile = tmp_path / "report.png", tmp_path / "profile"
    profile.mkdir()
    command = [str(cdp.chromium()), *cdp.FLAGS]
    command += [
        f"--user-data-dir={profile}",
        f"--screenshot={shot}",
        "--window-size=1280,1600",
        page.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    image = cv2.imread(str(shot), cv2.IMREAD_COLOR)
    assert image is not None and float(image.std()) > 15, "not a blank page"
    b, g, r = (image[..., i].astype(int) for i in range(3))
    # the plot's first line and dots: rgb(31, 119, 180)
    assert ((abs(r - 31) < 30) & (abs(g - 119) < 30) & (abs(b - 180) < 30)).sum() > 150, "the plot is drawn"


def test_a_changed_truth_is_scored_again_without_the_model(local_ray, archive, material, tmp_path):
    videos, truth = archive
    out = tmp_path / "out"
    assert batch(videos, out, material[2], truth) == 0
    record = out / "scripted.mp4" / "frames.jsonl"
    ran = (record.stat().st_mtime_ns, (out / "scripted.mp4" / "stats.json").stat().st_mtime_ns)
    scored = (out / "scripted.mp4" / "metrics.json").stat().st_mtime_ns

    assert batch(videos, out, material[2], truth) == 0
    rows = summary_rows(out)
    assert {r["status"] for r in rows.values()} == {"skipped: unchanged"}
    assert rows["scripted.mp4"]["frame_sensitivity"] == f"{30 / 37:.4f}", "the figures read back"
    assert (out / "scripted.mp4" / "metrics.json").stat().st_mtime_ns == scored, "not scored again"

    for i in range(73, 80):  # lesion B loses frames 73-79: 30 polyp frames, 17 + 6 with an alert
        save_frame_mask(truth / "scripted", i, np.zeros((128, 160), np.uint8))
    assert batch(videos, out, material[2], truth) == 0
    rows = summary_rows(out)
    s = rows["scripted.mp4"]
    assert s["status"] == "skipped: unchanged, scored again"
    assert (s["lesions"], s["frame_sensitivity"]) == ("2", f"{23 / 30:.4f}")
    assert rows["clear.mp4"]["status"] == "skipped: unchanged", "its truth did not change"
    assert (record.stat().st_mtime_ns, (out / "scripted.mp4" / "stats.json").stat().st_mtime_ns) == ran

    assert batch(videos, out, material[2], truth, "--lesion-gap", "2") == 0  # B: 60-69 and 73-79 apart
    assert summary_rows(out)["scripted.mp4"]["lesions"] == "2", "73-79 are polyp-free now: still two"
    assert summary_rows(out)["scripted.mp4"]["status"] == "skipped: unchanged, scored again"


def test_truths_that_do_not_fit_are_one_line_each_and_lose_nothing(
    local_ray, material, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "250")
    clip, masks, model = material
    videos, truth = tmp_path / "videos", tmp_path / "truth"
    videos.mkdir()
    for name in ("length", "size", "other", "gap", "two"):
        shutil.copy(clip, videos / f"{name}.mp4")
    shutil.copytree(masks, truth / "length", ignore=shutil.ignore_patterns("000099.png", "truth.json"))
    empty_truth(truth / "size", size=(64, 80))
    shutil.copytree(masks, truth / "other")
    other = tmp_path / "another.mp4"
    other.write_bytes(b"another video")
    write_truth_info(truth / "other", TruthInfo("another.mp4", sha256_of(other)))
    shutil.copytree(masks, truth / "gap")
    (truth / "gap" / "000017.png").unlink()
    shutil.copytree(masks, truth / "two")
    shutil.copytree(masks, truth / "two_masks")

    out = tmp_path / "out"
    assert batch(videos, out, model, truth) == 2, "bad input: exit 2"
    printed = capsys.readouterr()
    rows = summary_rows(out)
    errors = {name.removesuffix(".mp4"): row["truth_error"] for name, row in rows.items()}
    assert errors["length"] == f"length.mp4 has 100 frames, but {truth / 'length'} holds masks of 99"
    assert errors["size"].startswith("frame 0: the prediction is 160x128") and "80x64" in errors["size"]
    assert errors["other"].startswith("other.mp4 is not the video of")
    assert "another.mp4" in errors["other"]
    assert errors["gap"] == f"{truth / 'gap'}: masks of 1 of frames 0..99 are missing (first: 000017.png)"
    assert errors["two"] == f"{truth / 'two'} and {truth / 'two_masks'} are both its truth; keep one"
    assert "masks of 1 of frames 0..99 are missing" in printed.err, "said before the videos run"
    for name, row in rows.items():
        assert row["status"] == "ok" and row["lesions"] == "" and "\n" not in row["truth_error"]
        assert len(list((out / name / "masks").glob("*.png"))) == FRAMES, "the model's work is kept"
        assert not (out / name / "metrics.json").exists()
    assert "truth: " in printed.out, "the closing table says it"
    assert (out / "report.html").read_text(encoding="utf-8").count('class="err"') >= 5

    save_frame_mask(truth / "gap", 17, cv2.imread(str(masks / "000017.png"), cv2.IMREAD_GRAYSCALE))
    assert batch(videos, out, model, truth) == 2, "the others still do not fit"
    fixed = summary_rows(out)["gap.mp4"]
    assert fixed["status"] == "skipped: unchanged, scored again" and fixed["truth_error"] == ""
    assert (fixed["found"], fixed["frame_sensitivity"]) == ("2", f"{30 / 37:.4f}")

    assert (
        main(
            ["batch", str(videos), "--out", str(tmp_path / "o2"), "--model", str(model)]
            + ["--truth", str(tmp_path / "nowhere")]
        )
        == 2
    )
    assert "--truth" in capsys.readouterr().err and not (tmp_path / "o2").exists()
