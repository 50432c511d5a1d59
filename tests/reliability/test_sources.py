"""A source that fails: damaged files play past the damage and count it; what is not a video
stops with one line. Either way the recording so far is kept."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from polyp_rt.cli.main import main

FRAMES, FPS = 48, 24
LAYOUTS = {  # name: (suffix, muxer options)
    "mp4 index first": (".mp4", {"movflags": "+faststart"}),
    "fragmented mp4": (".mp4", {"movflags": "frag_keyframe+empty_moov+default_base_moof"}),
    "mkv": (".mkv", {}),
}


def run(model, source, tmp_path):
    """`polyp-rt --source SOURCE --record ... --stats-json ...` in this process: (exit code, out, stats)."""
    out, stats = tmp_path / "out.mp4", tmp_path / "stats.json"
    args = ["--source", str(source), "--model", str(model), "--device", "cpu", "--headless"]
    code = main([*args, "--record", str(out), "--stats-json", str(stats)])
    return code, out, json.loads(stats.read_text()) if stats.exists() else None


@pytest.mark.parametrize("layout", LAYOUTS)
def test_truncated_file_plays_to_the_cut_and_counts_the_rest(
    micro_onnx, tmp_path, make_clip, decoded, no_pipeline_threads, layout
):
    suffix, options = LAYOUTS[layout]
    clip = make_clip(tmp_path / f"clip{suffix}", FRAMES, options=options)
    data = clip.read_bytes()
    cut = clip.with_name(f"cut{suffix}")
    cut.write_bytes(data[: len(data) // 2])

    code, out, report = run(micro_onnx, cut, tmp_path)

    assert code == 0 and report["reason"] == "end of stream"
    assert FRAMES // 3 <= report["frames_in"] < FRAMES
    assert report["skipped"]["frames missing (file damaged or cut short)"] > 0
    assert decoded(out)[0] == report["recording"]["frames"] == report["frames_in"]
    assert no_pipeline_threads() == []


@pytest.mark.parametrize("layout", ["mp4 index first", "mkv"])
def test_corrupt_packet_is_skipped_counted_and_played_past(micro_onnx, tmp_path, make_clip, decoded, layout):
    suffix, options = LAYOUTS[layout]
    clip = make_clip(tmp_path / f"clip{suffix}", FRAMES, fps=FPS, options=options)
    data = bytearray(clip.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2000] = np.random.default_rng(1).integers(0, 256, 2000, np.uint8).tobytes()
    bad = clip.with_name(f"bad{suffix}")
    bad.write_bytes(bytes(data))

    code, out, report = run(micro_onnx, bad, tmp_path)

    assert code == 0 and report["reason"] == "end of stream"
    # the damage is counted: packets the decoder refused (MP4), frames the demuxer skipped (MKV)
    assert set(report["skipped"]) <= {"corrupt packets", "frames missing (file damaged or cut short)"}
    assert sum(report["skipped"].values()) >= 1
    assert report["frames_in"] + sum(report["skipped"].values()) >= FRAMES - 2
    assert decoded(out)[0] == report["recording"]["frames"] == report["frames_in"]
    assert last_frame_time(out) >= (FRAMES - 3) / FPS  # played on past the damage to the end


def last_frame_time(path) -> float:
    import av

    with av.open(str(path)) as container:
        return max(frame.time for frame in container.decode(video=0))


def not_a_video(path):
    path.write_text("case 0142: notes, not a video\n")


def random_bytes(path):
    path.write_bytes(np.random.default_rng(2).integers(0, 256, 20000, np.uint8).tobytes())


def empty(path):
    path.write_bytes(b"")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (empty, "the file is empty (0 bytes), not a video"),
        (not_a_video, "not a video FFmpeg can read"),
        (random_bytes, "not a video FFmpeg can read"),
    ],
    ids=["zero bytes", "text file", "random bytes"],
)
def test_not_a_video_is_one_line(micro_onnx, tmp_path, capsys, one_error_line, make, message):
    source = tmp_path / "case.mp4"
    make(source)
    code, out, report = run(micro_onnx, source, tmp_path)
    assert code == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(source) in line and message in line
    assert not out.exists() and report is None  # stopped before anything was recorded


def test_mp4_cut_before_its_index_is_one_line(micro_onnx, tmp_path, make_clip, capsys, one_error_line):
    clip = make_clip(tmp_path / "clip.mp4", FRAMES)  # plain MP4: the index (moov) is written last
    data = clip.read_bytes()
    cut = clip.with_name("cut.mp4")
    cut.write_bytes(data[: len(data) // 2])
    code, out, _ = run(micro_onnx, cut, tmp_path)
    assert code == 2
    line = one_error_line(capsys.readouterr().err)
    assert "cut.mp4: not a video FFmpeg can read" in line and "cut short before its index" in line
    assert not out.exists()


def test_image_folder_with_an_unreadable_image(micro_onnx, tmp_path, decoded):
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(12):
        cv2.imwrite(str(folder / f"{i:04d}.png"), rng.integers(0, 255, (80, 96, 3), np.uint8))
    (folder / "0005.png").write_bytes(b"\x89PNG\r\n\x1a\n but then nothing of an image")

    code, out, report = run(micro_onnx, folder, tmp_path)

    assert code == 0 and report["reason"] == "end of stream"
    assert report["skipped"] == {"unreadable images": 1}
    assert report["frames_in"] == report["recording"]["frames"] == decoded(out)[0] == 11
