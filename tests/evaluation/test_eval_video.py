"""`polyp-rt eval --video` and `--record` end to end: a real H.264 clip, a real ONNX Runtime model,
the real pipeline and the batch's own worker; the figures are the script's, worked out by hand in
tests/evaluation/test_scorer.py (4.0 s of video: n alarms are 15 n per minute)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from polyp_rt.cli.main import main
from polyp_rt.realtime.alert_gate import AlertGate
from polyp_rt.train.data import read_mask

GATE_3_0 = ("--alert-min-frames", "3", "--alert-hold", "0")  # the live gate; the default may change


def eval_json(capsys, *args):
    assert main(["eval", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def video_args(clip, model, *more):
    return [
        "--video",
        str(clip),
        "--truth",
        str(clip.with_name("scripted_masks")),
        "--model",
        str(model),
        *more,
    ]


def test_eval_video_scores_the_masks_and_what_the_gate_drew(scripted_clip, brightness_onnx, capsys):
    out = eval_json(capsys, *video_args(scripted_clip, brightness_onnx, *GATE_3_0))
    ungated, gated = out["scores"]["ungated"], out["scores"]["gate 3:0"]
    assert (ungated["frames"], ungated["overlap"]) == (100, "mask")
    assert ungated["duration_s"] == pytest.approx(4.0)
    # the script: A found after 3 frames, B after 4; six false alarms, one of 0.5 s or more
    assert [les["delay_frames"] for les in ungated["per_lesion"]] == [3, 4]
    assert [a["count"] for a in ungated["false_alarms"]] == [6, 1, 0, 0]
    assert ungated["false_alarms"][1]["per_minute"] == pytest.approx(15.0)
    assert ungated["frame_sensitivity"] == pytest.approx(30 / 37)
    assert ungated["frame_specificity"] == pytest.approx(2 / 3)
    assert ungated["switches_per_minute"] == pytest.approx(270.0)
    assert 0.68 < ungated["dice"] <= 0.72  # 0.72 with exact squares; H.264 and 64 px blur the edges
    # drawn after the gate: W62 and F88-98 are left, two frames more to each first detection
    assert [les["delay_frames"] for les in gated["per_lesion"]] == [5, 6]
    assert [a["count"] for a in gated["false_alarms"]] == [2, 0, 0, 0]
    assert gated["lesions_found"] == 2
    assert out["engine"]["backend"] in ("onnxruntime", "openvino")  # auto: the preferred CPU runtime


def test_smoothing_reaches_the_pipeline_and_delays_the_first_detections(
    scripted_clip, brightness_onnx, capsys
):
    """--smoothing is the live loop's: the probability averaged with the previous frames', so a
    polyp that appears is found later than without it, never sooner."""
    plain = eval_json(capsys, *video_args(scripted_clip, brightness_onnx, *GATE_3_0))
    smooth = eval_json(capsys, *video_args(scripted_clip, brightness_onnx, *GATE_3_0, "--smoothing", "0.9"))
    assert (plain["smoothing"], smooth["smoothing"]) == (0.0, 0.9)
    before = [les["delay_frames"] for les in plain["scores"]["ungated"]["per_lesion"]]
    after = [les["delay_frames"] for les in smooth["scores"]["ungated"]["per_lesion"]]
    assert len(after) == len(before) == 2
    assert all(a >= b for a, b in zip(after, before, strict=True)) and after != before, (before, after)


def test_the_table_has_a_column_per_stream(scripted_clip, brightness_onnx, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    args = video_args(scripted_clip, brightness_onnx, *GATE_3_0, "--gates", "5:0", "2:1")
    assert main(["eval", *args]) == 0
    table = capsys.readouterr().out
    for text in ("ungated", "gate 3:0", "gate 5:0", "gate 2:1", "2/2 (1.000)", "6 (90.0/min, 21.0%)"):
        assert text in table


def test_replaying_the_gate_over_the_written_masks_gives_what_was_drawn(
    scripted_clip, brightness_onnx, tmp_path
):
    from polyp_rt.engines.registry import open_engine
    from polyp_rt.realtime.compose import compose
    from polyp_rt.realtime.config import OverlayConfig, RunConfig
    from polyp_rt.realtime.sinks import Sink

    drawn: dict[int, np.ndarray] = {}

    class Drawn(Sink):
        def write(self, frame):
            drawn[frame.index] = frame.alert.copy()

    masks = tmp_path / "masks"
    config = RunConfig(
        source=str(scripted_clip),
        model=brightness_onnx,
        masks_out=masks,
        headless=True,
        overlay=OverlayConfig(alert_min_frames=3, alert_hold=2),
    )
    with open_engine(brightness_onnx) as engine, compose(config, engine, extra_sinks=[Drawn()]) as pipeline:
        assert pipeline.run().reason == "end of stream"
    replay = AlertGate(3, 2)
    for i in range(100):
        assert np.array_equal(replay(read_mask(masks / f"{i:06d}.png")), drawn[i]), f"frame {i}"
    assert sum(bool(a.any()) for a in drawn.values()) < sum(bool(read_mask(p).any()) for p in masks.iterdir())


def batch_record(clip, model, work, masks=True):
    """The batch's own worker over `clip` (no Ray needed): its result folder."""
    from dataclasses import replace

    from polyp_rt.batch.config import BatchConfig
    from polyp_rt.batch.worker import VideoJob, process_video

    run = BatchConfig(inputs=[clip], out=work, model=model, masks=masks).run_config()
    job = VideoJob(clip.stem, replace(run, source=str(clip)), work)
    result = process_video(job, attempt=1)
    assert result.row.status == "ok", result.row.error
    return work / f"{clip.stem}.attempt1"


def test_eval_record_scores_a_batch_run_like_the_live_run(scripted_clip, brightness_onnx, tmp_path, capsys):
    folder = batch_record(scripted_clip, brightness_onnx, tmp_path / "work")
    truth = str(scripted_clip.with_name("scripted_masks"))
    out = eval_json(capsys, "--record", str(folder / "frames.jsonl"), "--truth", truth, "--gates", "3:0")
    assert out["notes"] == []
    ungated, gated = out["scores"]["ungated"], out["scores"]["gate 3:0"]
    assert ungated["overlap"] == "mask"
    assert [a["count"] for a in ungated["false_alarms"]] == [6, 1, 0, 0]
    assert [les["delay_frames"] for les in gated["per_lesion"]] == [5, 6]
    assert [a["count"] for a in gated["false_alarms"]] == [2, 0, 0, 0]


def test_a_record_without_masks_is_scored_frame_by_frame(scripted_clip, brightness_onnx, tmp_path, capsys):
    folder = batch_record(scripted_clip, brightness_onnx, tmp_path / "work", masks=False)
    truth = str(scripted_clip.with_name("scripted_masks"))
    out = eval_json(capsys, "--record", str(folder), "--truth", truth, "--gates", "3:0")
    assert list(out["scores"]) == ["ungated"] and "no masks/" in out["notes"][0]
    s = out["scores"]["ungated"]
    # by time: W 60-62 falls inside lesion B, so B is found at once and five alarms are left
    assert s["overlap"] == "time"
    assert [les["delay_frames"] for les in s["per_lesion"]] == [3, 0]
    assert [a["count"] for a in s["false_alarms"]] == [5, 1, 0, 0]
    assert s["dice"] is None


def test_the_plot_is_written_as_svg_and_png(scripted_clip, brightness_onnx, tmp_path, capsys):
    import cv2

    svg, png = tmp_path / "curve.svg", tmp_path / "curve.png"
    for plot in (svg, png):
        args = video_args(
            scripted_clip, brightness_onnx, *GATE_3_0, "--gates", "3:0", "5:0", "--plot", str(plot)
        )
        eval_json(capsys, *args)
    text = svg.read_text()
    assert text.startswith("<svg") and text.count("<circle") == 3 * 4  # 3 streams (3:0 once) x 4 taus
    assert "alarms &gt;= 0.5 s" in text  # labels are escaped
    picture = cv2.imread(str(png))
    assert picture.shape == (480, 760, 3) and (picture < 200).any()


def copy_truth(clip, tmp_path):
    truth = tmp_path / "truth"
    shutil.copytree(clip.with_name("scripted_masks"), truth)
    return truth


def one_error(capsys, args):
    assert main(["eval", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_a_truth_folder_with_missing_frames(scripted_clip, brightness_onnx, tmp_path, capsys):
    truth = copy_truth(scripted_clip, tmp_path)
    (truth / "000017.png").unlink()
    (truth / "000018.png").unlink()
    err = one_error(capsys, [*video_args(scripted_clip, brightness_onnx), "--truth", str(truth)])
    assert "masks of 2 of frames 0..99 are missing (first: 000017.png)" in err


def test_a_truth_of_another_length(scripted_clip, brightness_onnx, tmp_path, capsys):
    truth = copy_truth(scripted_clip, tmp_path)
    (truth / "truth.json").unlink()
    shutil.copy(truth / "000099.png", truth / "000100.png")
    err = one_error(capsys, [*video_args(scripted_clip, brightness_onnx), "--truth", str(truth)])
    assert "has 100 frames, but" in err and "holds masks of 101" in err


def test_a_mask_of_another_size(scripted_clip, brightness_onnx, tmp_path, capsys):
    import cv2

    truth = copy_truth(scripted_clip, tmp_path)
    (truth / "truth.json").unlink()
    cv2.imwrite(str(truth / "000042.png"), np.zeros((64, 80), np.uint8))
    err = one_error(capsys, [*video_args(scripted_clip, brightness_onnx), "--truth", str(truth)])
    assert "000042.png: mask is 80x64, the frames are 160x128" in err
    for name in (p.name for p in truth.glob("*.png")):
        cv2.imwrite(str(truth / name), np.zeros((64, 80), np.uint8))
    err = one_error(capsys, [*video_args(scripted_clip, brightness_onnx), "--truth", str(truth)])
    assert "masks are 80x64, but" in err and "160x128 frames" in err


def test_a_record_or_a_video_of_another_video(scripted_clip, brightness_onnx, make_clip, tmp_path, capsys):
    other = make_clip(tmp_path / "other", "other", background=40)  # same length and size, other pictures
    truth = str(other.with_name("other_masks"))
    folder = batch_record(scripted_clip, brightness_onnx, tmp_path / "work")
    err = one_error(capsys, ["--record", str(folder), "--truth", truth])
    assert f"the record {folder / 'frames.jsonl'} is not the video of {truth}" in err
    assert "its truth.json names other.mp4" in err
    err = one_error(capsys, [*video_args(scripted_clip, brightness_onnx), "--truth", truth])
    assert f"{scripted_clip} is not the video of {truth}" in err


def test_a_record_at_another_frame_rate_or_length(scripted_clip, brightness_onnx, tmp_path, capsys):
    from polyp_rt.evaluation.truth import TruthInfo, write_truth_info

    folder = batch_record(scripted_clip, brightness_onnx, tmp_path / "work")
    truth = copy_truth(scripted_clip, tmp_path)
    write_truth_info(truth, TruthInfo(fps=30.0))
    err = one_error(capsys, ["--record", str(folder), "--truth", str(truth)])
    assert "runs at 25 fps, but the video of" in err and "at 30 fps (truth.json)" in err
    (truth / "truth.json").unlink()
    (truth / "000099.png").unlink()
    err = one_error(capsys, ["--record", str(folder), "--truth", str(truth)])
    assert "has 100 frames, but" in err and "holds masks of 99" in err
