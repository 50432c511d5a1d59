"""Damage reported as fine (issue 33, class 11): a cut MKV, and a fragmented MP4 of the recorder's
own layout cut in half, are flagged as damaged in `polyp-rt run` (the closing table, the stats
JSON, one warning) and in `polyp-rt batch` (summary.csv, the report page, the closing table, a
rerun); files that are whole are not, even where the container declares no length (a fragmented
MP4 without its closing index) or the frame rate varies. Real PyAV encodes, cut with real bytes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from polyp_rt.realtime.config import CaptureConfig
from polyp_rt.realtime.recorder import Recorder
from polyp_rt.realtime.sources.video_file import VideoFileSource
from tests.reliability.batch_cli import polyp_rt
from tests.reliability.conftest import encode_clip, mp4_boxes
from tests.reliability.test_names import chromium_text
from tests.reliability.test_wrong_results import vfr_clip

FRAMES, FPS = 96, 24


def recording(path: Path, frames: int = FRAMES) -> Path:
    """A fragmented MP4 exactly as `--record` writes it (realtime/recorder.py: 200 ms fragments,
    no index up front, the `mfra` index at the end), of moving content."""
    rng = np.random.default_rng(5)
    with Recorder(path, 160, 128, FPS) as recorder:
        for i in range(frames):
            rgb = rng.integers(30, 90, (128, 160, 3), dtype=np.uint8)
            x = (i * 3) % 130
            rgb[32:64, x : x + 30] = (220, 160, 170)
            recorder.write(rgb, i / FPS)
    assert mp4_boxes(path)[-1] == "mfra", "finalised, with its index"
    return path


def box_offsets(path: Path) -> list[tuple[str, int, int]]:
    """(type, offset, size) of every top-level MP4 box (the files here use 32-bit sizes)."""
    data, boxes, at = path.read_bytes(), [], 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        boxes.append((data[at + 4 : at + 8].decode("latin-1"), at, size))
        at += size
    return boxes


def cut(path: Path, name: str, length: int) -> Path:
    """The first `length` bytes of `path`, as `name` beside it."""
    out = path.with_name(name)
    out.write_bytes(path.read_bytes()[:length])
    return out


def halved(path: Path, name: str) -> Path:
    return cut(path, name, path.stat().st_size // 2)


def play(path: Path) -> tuple[int, VideoFileSource]:
    """Every frame of `path` through the file source, as the pipeline reads it: (frames, source)."""
    source = VideoFileSource(path, CaptureConfig())
    source.open()
    try:
        frames = 0
        while source.read() is not None:
            frames += 1
    finally:
        source.close()
    return frames, source


# ------------------------------------------------------------------ the source's verdict


def test_a_recording_cut_inside_a_fragment_is_called_cut_short(tmp_path: Path) -> None:
    full = recording(tmp_path / "rec.mp4")
    boxes = box_offsets(full)
    inside = [b for b in boxes if b[0] in ("moof", "mdat") and b[1] < full.stat().st_size // 2]
    mdat, moof = next(b for b in reversed(inside) if b[0] == "mdat"), inside[-1]
    for length in (full.stat().st_size // 2, mdat[1] + mdat[2] // 2, moof[1] + 12, mdat[1] + 4):
        frames, source = play(cut(full, "cut.mp4", length))
        damage = source.damage()
        assert 0 < frames < FRAMES
        assert damage is not None and "cut short" in damage, (length, damage)


def test_a_recording_that_ends_on_a_whole_fragment_is_not_called_damaged(tmp_path: Path) -> None:
    full = recording(tmp_path / "rec.mp4")
    boxes = box_offsets(full)
    mfra = boxes[-1]
    assert mfra[0] == "mfra"
    # the closing index gone (as a writer that writes none leaves it), or cut in the middle: every
    # frame is there, and nothing in the file says it was meant to be longer
    for length in (mfra[1], mfra[1] + mfra[2] // 2):
        frames, source = play(cut(full, "no_index.mp4", length))
        assert frames == FRAMES and source.damage() is None and source.skipped == {}
    whole, source = play(full)
    assert whole == FRAMES and source.damage() is None


def test_whole_files_are_not_called_damaged(tmp_path: Path) -> None:
    files = {
        "mkv": encode_clip(tmp_path / "clip.mkv", 48),
        "mp4 index first": encode_clip(tmp_path / "faststart.mp4", 48, options={"movflags": "+faststart"}),
        "plain mp4": encode_clip(tmp_path / "plain.mp4", 48),
    }
    vfr = tmp_path / "vfr.mkv"
    files["variable frame rate"] = vfr
    expected = {name: 48 for name in files} | {"variable frame rate": vfr_clip(vfr)}
    for name, path in files.items():
        frames, source = play(path)
        assert frames == expected[name] and source.damage() is None, name


def test_a_cut_mkv_is_damaged(tmp_path: Path) -> None:
    frames, source = play(halved(encode_clip(tmp_path / "clip.mkv", 48), "cut.mkv"))
    damage = source.damage()
    assert frames < 48 and damage is not None
    assert f"{48 - frames} of the 48 frames" in damage, damage


# ------------------------------------------------------------------ polyp-rt run


@pytest.mark.parametrize("layout", ["mkv", "recording"])
def test_run_flags_a_cut_file_in_its_table_stats_and_one_warning(
    micro_onnx: Path, tmp_path: Path, layout: str
) -> None:
    if layout == "mkv":
        source = halved(encode_clip(tmp_path / "clip.mkv", 48), "cut.mkv")
    else:
        source = halved(recording(tmp_path / "rec.mp4"), "cut.mp4")
    stats = tmp_path / "stats.json"
    args = ["--source", str(source), "--model", str(micro_onnx), "--device", "cpu", "--headless"]
    done = polyp_rt([*args, "--stats-json", str(stats)])
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, err[-3000:]

    report = json.loads(stats.read_text())
    assert report["reason"] == "end of stream" and 0 < report["frames_in"] < FRAMES
    damage = report["damage"]
    assert isinstance(damage, str) and ("cut short" in damage or "missing" in damage)
    warnings = [line for line in err.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and source.name in warnings[0] and damage in warnings[0], err
    title = " ".join(out.split("┏")[0].split())  # what rich prints above the table, wrapped
    assert "damaged input" in title, "the closing table's title says so"
    assert f"damaged input: {damage}" in " ".join(out.split()), "and its caption says what"


# ------------------------------------------------------------------ polyp-rt batch


def read_summary(out: Path) -> dict[str, dict[str, str]]:
    with (out / "summary.csv").open(newline="", encoding="utf-8") as f:
        return {row["video"]: row for row in csv.DictReader(f)}


def test_batch_flags_damaged_videos_in_the_summary_the_page_and_a_rerun(
    micro_onnx: Path, tmp_path: Path
) -> None:
    pytest.importorskip("ray")
    archive = tmp_path / "archive"
    archive.mkdir()
    mkv = encode_clip(tmp_path / "clip.mkv", 48)
    rec = recording(tmp_path / "rec.mp4")
    halved(mkv, "cut.mkv").rename(archive / "cut.mkv")
    halved(rec, "cut_rec.mp4").rename(archive / "cut_rec.mp4")
    mkv.rename(archive / "whole.mkv")
    cut(rec, "no_index.mp4", box_offsets(rec)[-1][1]).rename(archive / "no_index.mp4")
    vfr_clip(archive / "vfr.mkv")
    out = tmp_path / "out"
    args = ["batch", str(archive), "--out", str(out), "--model", str(micro_onnx)]

    first = polyp_rt(args)
    terminal = first.stdout.decode() + first.stderr.decode()
    assert first.returncode == 0, terminal[-3000:]
    rows = read_summary(out)
    damaged = {"cut.mkv", "cut_rec.mp4"}
    assert {name: row["status"] for name, row in rows.items()} == {
        name: "damaged" if name in damaged else "ok"
        for name in ("cut.mkv", "cut_rec.mp4", "whole.mkv", "no_index.mp4", "vfr.mkv")
    }
    for name, row in rows.items():
        stats = json.loads((out / name / "stats.json").read_text())
        if name in damaged:
            assert row["damage"] and row["damage"] == stats["damage"], (name, row)
            assert 0 < int(row["frames"]) < 48 * (2 if name == "cut_rec.mp4" else 1)
        else:
            assert row["damage"] == "" and stats["damage"] is None, (name, row)
    assert "cut short" in rows["cut_rec.mp4"]["damage"]
    assert "3 ok" in terminal and "2 damaged" in terminal, terminal[-3000:]

    page = " ".join(chromium_text(out / "report.html", tmp_path / "profile").split())
    assert "3 ok · 2 damaged · 0 failed" in page and "Damaged or cut-short videos (2)" in page
    for name in damaged:  # in the list up top, and on the video's own card
        assert page.count(rows[name]["damage"]) == 2, f"{name}: its damage is on the page"

    again = polyp_rt(args)
    assert again.returncode == 0, (again.stdout + again.stderr).decode()[-3000:]
    rerun = read_summary(out)
    assert {row["status"] for row in rerun.values()} == {"skipped: unchanged"}
    assert {name: row["damage"] for name, row in rerun.items()} == {
        name: row["damage"] for name, row in rows.items()
    }, "a rerun keeps what was found wrong with the videos it skips"
    page = " ".join(chromium_text(out / "report.html", tmp_path / "profile").split())
    assert "Damaged or cut-short videos (2)" in page
