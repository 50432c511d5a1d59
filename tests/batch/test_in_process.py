"""`polyp-rt batch --in-process`: the videos run one after another in the command's own process,
in real `polyp-rt` processes that cannot import Ray (so nothing here needs the batch extra's Ray)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from polyp_rt.realtime.config import DEMO_MODEL_INT8
from tests.batch.conftest import summary_rows
from tests.reliability.batch_cli import environment, make_clip, wait_on_process

# `polyp-rt` with Ray made unimportable, as on a machine without it
WITHOUT_RAY = (
    "import sys; sys.modules['ray'] = None; from polyp_rt.cli.main import main; sys.exit(main(sys.argv[1:]))"
)


def without_ray(args: list[str]) -> list[str]:
    return [sys.executable, "-c", WITHOUT_RAY, *args]


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(without_ray(args), capture_output=True, text=True, timeout=300, env=environment())


def test_videos_run_here_without_ray_and_a_rerun_skips_them(micro_onnx: Path, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    make_clip(archive / "a.mp4", frames=12, seed=1)
    make_clip(archive / "b.mp4", frames=20, seed=2)
    (archive / "broken.mp4").write_bytes(os.urandom(3000))
    out = tmp_path / "out"
    args = ["batch", str(archive), "--out", str(out), "--model", str(micro_onnx), "--in-process"]

    first = run(args)
    assert first.returncode == 2, first.stderr[-2000:]  # one bad input: exit 2, the others done
    assert "32 frames in 00:0" in first.stdout and "× real time, in this process" in first.stdout
    rows = summary_rows(out)
    assert [(n, rows[n]["status"], rows[n]["frames"]) for n in rows] == [
        ("a.mp4", "ok", "12"),
        ("b.mp4", "ok", "20"),
        ("broken.mp4", "failed", "0"),
    ]
    assert "not a video FFmpeg can read" in rows["broken.mp4"]["error"]
    assert "\nbroken.mp4: SourceError: " in first.stdout, "why it failed, under the closing table"
    for name, frames in (("a.mp4", 12), ("b.mp4", 20)):
        records = [json.loads(line) for line in (out / name / "frames.jsonl").read_text().splitlines()]
        assert [r["frame"] for r in records] == list(range(frames)), "each frame once, in order"
        stats = json.loads((out / name / "stats.json").read_text())
        assert stats["batch"]["video"] == name and stats["batch"]["attempt"] == 1
    assert sorted(json.loads((out / "manifest.json").read_text())["videos"]) == ["a.mp4", "b.mp4"]
    assert not (out / ".work").exists() and (out / "report.html").is_file()

    again = run(args)
    assert again.returncode == 2
    assert [r["status"] for r in summary_rows(out).values()] == [
        "skipped: unchanged",
        "skipped: unchanged",
        "failed",
    ]


@pytest.mark.parametrize(
    "extra", [["--workers", "2"], ["--ray-address", "auto"], ["--gpus-per-task", "1"]], ids=lambda e: e[0]
)
def test_options_that_need_ray_are_refused_in_one_line(
    extra: list[str], micro_onnx: Path, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "a.mp4", frames=4)
    done = run(
        [
            "batch",
            str(clip),
            "--out",
            str(tmp_path / "out"),
            "--model",
            str(micro_onnx),
            "--in-process",
            *extra,
        ]
    )
    assert done.returncode == 2
    assert "--in-process runs one video at a time in this process" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_ctrl_c_mid_video_stops_writes_the_reports_and_a_rerun_finishes(tmp_path: Path) -> None:
    # the bundled model: with the micro one the video could end before the signal arrives
    clip = make_clip(tmp_path / "in" / "long.mp4", frames=720)
    out = tmp_path / "out"
    args = ["batch", str(clip), "--out", str(out), "--model", str(DEMO_MODEL_INT8), "--in-process"]
    driver = subprocess.Popen(
        without_ray(args), env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        work = out / ".work"
        wait_on_process(
            driver.pid, lambda: any(f.stat().st_size > 0 for f in work.glob("*/frames.jsonl")), timeout=180
        )
        driver.send_signal(signal.SIGINT)
        stdout, stderr = driver.communicate(timeout=120)
    finally:
        driver.kill()
    assert driver.returncode == 130, stderr.decode()[-2000:]
    assert "interrupted: 1 video(s) not finished; run the same command again to resume" in stdout.decode()
    assert [r["status"] for r in summary_rows(out).values()] == ["skipped: interrupted"]
    assert (out / "report.html").is_file() and not (out / ".work").exists()
    manifest = out / "manifest.json"
    assert not manifest.is_file() or "long.mp4" not in json.loads(manifest.read_text()).get("videos", {})

    resumed = run(args)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert [(r["status"], r["frames"]) for r in summary_rows(out).values()] == [("ok", "720")]


def test_without_ray_a_plain_batch_says_what_to_install_or_pass(micro_onnx: Path, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "a.mp4", frames=4)
    done = run(["batch", str(clip), "--out", str(tmp_path / "out"), "--model", str(micro_onnx)])
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert 'pip install "polyp-rt[batch]"' in done.stderr and "--in-process" in done.stderr
    assert not (tmp_path / "out").exists()
