"""Input that used to give a wrong result without a word: image folders of mixed sizes, rotation
metadata, variable frame rates, a video track without frames, an opset the exporter did not
write, a mask half-written on a full disk. Each is now right, or one line (exit 2)."""

from __future__ import annotations

import json
from fractions import Fraction

import cv2
import numpy as np
import pytest

from polyp_rt.cli.main import main

CLEAN = ["--mask-alpha", "0", "--no-contours", "--no-hud"]  # record the frames as they came


def run(model, source, tmp_path, *extra):
    """`polyp-rt --source SOURCE --record ... --stats-json ...` in this process: (code, out, report)."""
    out, stats = tmp_path / "out.mp4", tmp_path / "stats.json"
    args = ["--source", str(source), "--model", str(model), "--device", "cpu", "--headless", *extra]
    code = main([*args, "--record", str(out), "--stats-json", str(stats)])
    return code, out, json.loads(stats.read_text()) if stats.exists() else None


def frames_of(path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


# ------------------------------------------------------------------ image folders of mixed sizes


def test_an_image_folder_of_mixed_sizes_is_shown_whole_and_noted_once(micro_onnx, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    first = np.full((96, 128, 3), 60, np.uint8)  # 128x96: the recording's size
    tall = np.full((192, 128, 3), 60, np.uint8)  # 128x192: its bottom quarter is white
    tall[144:] = 255
    wide = np.full((96, 256, 3), 60, np.uint8)  # 256x96: its right quarter is white
    wide[:, 192:] = 255
    for i, image in enumerate([first, first, tall, wide, tall]):
        cv2.imwrite(str(folder / f"{i:04d}.png"), image)

    code, out, report = run(micro_onnx, folder, tmp_path, *CLEAN)

    assert code == 0 and report["frames_in"] == 5
    frames = frames_of(out)
    assert len(frames) == 5 and all(f.shape == (96, 128, 3) for f in frames)
    tall_shown, wide_shown = frames[2].astype(int), frames[3].astype(int)
    # the tall image scaled by 1/2 into the middle 64 columns: black bars left and right, and
    # its white bottom quarter shown (cropping to the top-left would have lost it)
    assert tall_shown[:, :28].mean() < 20 and tall_shown[:, 100:].mean() < 20
    assert tall_shown[76:92, 40:88].mean() > 200 and tall_shown[8:60, 40:88].mean() < 100
    # the wide image scaled by 1/2 into the middle 48 rows: its white right quarter shown
    assert wide_shown[:20].mean() < 20 and wide_shown[76:].mean() < 20
    assert wide_shown[28:68, 100:124].mean() > 200 and wide_shown[28:68, 4:88].mean() < 100
    notes = [e for e in report["events"] if "letterboxed" in e]
    assert len(notes) == 1 and "frame 2 is 128x192, not 128x96" in notes[0]


# ------------------------------------------------------------------ rotation metadata


def rotated_clip(path, degrees: int, hflip: bool = False) -> np.ndarray:
    """A clip whose display matrix turns it `degrees` counter-clockwise: players show the upright
    picture returned (portrait 48x64, white top-left corner), while its frames are stored turned."""
    import av

    upright = np.full((64, 48, 3), 50, np.uint8)
    upright[:16, :12] = 255
    stored = np.ascontiguousarray(np.rot90(upright, -(degrees // 90)))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24, options={"preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = stored.shape[1], stored.shape[0], "yuv420p"
        stream.set_display_rotation(degrees, hflip=hflip)
        for _ in range(6):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")))
        container.mux(stream.encode(None))
    return upright


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_rotation_metadata_is_applied_so_the_recording_is_upright(micro_onnx, tmp_path, degrees):
    clip = tmp_path / "phone.mp4"
    upright = rotated_clip(clip, degrees)
    code, out, report = run(micro_onnx, clip, tmp_path, *CLEAN)
    assert code == 0 and report["frames_in"] == 6
    for frame in frames_of(out):
        assert frame.shape == upright.shape  # portrait, as a player shows the clip
        assert frame[:16, :12].mean() > 200 and frame[24:, 20:].mean() < 90  # the corner on top-left


def test_mirrored_video_is_refused_with_one_line(micro_onnx, tmp_path, capsys, one_error_line):
    clip = tmp_path / "mirror.mp4"
    rotated_clip(clip, 90, hflip=True)
    code, out, _ = run(micro_onnx, clip, tmp_path)
    assert code == 2
    assert "its display matrix mirrors the picture" in one_error_line(capsys.readouterr().err)
    assert not out.exists()


# ------------------------------------------------------------------ variable frame rate


def vfr_clip(path) -> int:
    """An intact MKV at a variable frame rate: 30 frames 33 ms apart, then 30 frames 100 ms apart."""
    import av

    tb = Fraction(1, 1000)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30, options={"preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = tb
        t = 0
        for i in range(60):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 4 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = t, tb
            t += 33 if i < 30 else 100
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return 60


def test_an_intact_variable_frame_rate_file_is_not_called_damaged(micro_onnx, tmp_path):
    clip = tmp_path / "vfr.mkv"
    frames = vfr_clip(clip)
    code, _, report = run(micro_onnx, clip, tmp_path)
    assert code == 0 and report["reason"] == "end of stream"
    assert report["frames_in"] == frames and report["skipped"] == {}


def test_a_variable_frame_rate_file_cut_short_is_still_counted(micro_onnx, tmp_path):
    clip = tmp_path / "vfr.mkv"
    vfr_clip(clip)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size * 2 // 3])
    code, _, report = run(micro_onnx, cut, tmp_path)
    assert code == 0
    assert report["skipped"]["frames missing (file damaged or cut short)"] >= 10


# ------------------------------------------------------------------ a video track without frames


def video_track_without_frames(path) -> None:
    """An MKV with a video track that holds no frame (only its audio track has packets)."""
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("aac", rate=48000)
        for i in range(20):
            samples = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            samples.sample_rate, samples.pts = 48000, i * 1024
            container.mux(audio.encode(samples))
        container.mux(audio.encode(None))


def test_a_video_track_without_frames_is_one_line(micro_onnx, tmp_path, capsys, one_error_line):
    clip = tmp_path / "empty_track.mkv"
    video_track_without_frames(clip)
    code, out, report = run(micro_onnx, clip, tmp_path)
    assert code == 2
    err = capsys.readouterr().err
    assert one_error_line(err) == f"error: {clip}: its video track holds no frame; nothing to play"
    assert "nan" not in err.lower()
    assert not out.exists() and report is None


# ------------------------------------------------------------------ export: the opset asked for


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory):
    """A polyp-rt checkpoint of the cpu preset's decoder on MobileNetV2 at 64 px with random weights
    (no training needed). MobileNetV2: the Lite encoders' TF "same" padding exports at opset 18 only."""
    import torch

    from polyp_rt.engines.checkpoint import save_checkpoint
    from polyp_rt.engines.models import contract_for, create_model, model_config

    path = tmp_path_factory.mktemp("ckpt") / "random.pt"
    conf = model_config("cpu", encoder="mobilenet_v2", size=64)
    torch.manual_seed(0)
    save_checkpoint(path, create_model(conf), contract_for(conf), {"note": "random weights"})
    return path


def test_export_refuses_an_opset_it_cannot_write_up_front(tmp_path, capsys, one_error_line):
    out = tmp_path / "m.onnx"
    with pytest.raises(SystemExit) as stopped:  # refused when the flags are parsed, before any work
        main(["export", "--checkpoint", str(tmp_path / "none.pt"), "-o", str(out), "--opset", "5"])
    assert stopped.value.code == 2
    assert "argument --opset: 5 is out of range: must be >= 16" in one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_export_writes_the_opset_asked_for(random_checkpoint, tmp_path):
    import onnx

    out = tmp_path / "m17.onnx"
    assert main(["export", "--checkpoint", str(random_checkpoint), "-o", str(out), "--opset", "17"]) == 0
    versions = [o.version for o in onnx.load(str(out)).opset_import if o.domain in ("", "ai.onnx")]
    assert versions == [17]


# ------------------------------------------------------------------ a mask half-written on a full disk


def test_a_mask_write_stopped_by_a_full_disk_leaves_no_partial_file(
    micro_onnx, synthetic_clip, tmp_path, cli, one_error_line
):
    masks = tmp_path / "masks"
    args = ["--source", str(synthetic_clip), "--model", str(micro_onnx), "--device", "cpu", "--headless"]
    proc = cli([*args, "--masks-out", str(masks)], fsize_limit=0)  # no file may grow: EFBIG at once
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    line = one_error_line(err)
    assert line == f"error: {masks}/000000.png: writing the mask failed (File too large)"
    assert list(masks.iterdir()) == []  # the 0-byte 000000.png is removed, and was not counted


def test_a_lite_model_asked_for_opset_17_is_one_line(tmp_path, capsys):
    """The bundled architecture's dynamic "same" padding does not convert below opset 18."""
    from polyp_rt.engines.checkpoint import save_checkpoint
    from polyp_rt.engines.models import contract_for, create_model, model_config

    conf = model_config("cpu", size=64)
    save_checkpoint(tmp_path / "lite.pt", create_model(conf), contract_for(conf), {"note": "random weights"})
    out = tmp_path / "m17.onnx"
    assert main(["export", "--checkpoint", str(tmp_path / "lite.pt"), "-o", str(out), "--opset", "17"]) == 2
    err = capsys.readouterr().err
    assert "could not convert this model to opset 17 (it wrote 18); export with --opset 18" in err
    assert "Traceback" not in err and not out.exists()
