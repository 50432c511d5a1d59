"""`polyp-rt batch` on a real embedded Ray: every output of a run, a resume, a worker SIGKILLed
mid-video and retried. One Ray serves the whole module (its start-up takes seconds on 2 cores)."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import pytest

from polyp_rt.batch.cluster import import_ray, start_ray
from polyp_rt.core.errors import PolypRtError

try:  # as `polyp-rt batch` does: Ray's single-machine mode (127.0.0.1) is chosen before ray is imported
    import_ray(local=True)
except PolypRtError as missing:
    pytest.skip(str(missing), allow_module_level=True)

from polyp_rt.batch.config import BatchConfig  # noqa: E402
from polyp_rt.batch.episodes import episodes, iter_frames_jsonl  # noqa: E402
from polyp_rt.batch.events import FRAMES, STARTED, Event  # noqa: E402
from polyp_rt.batch.inputs import Video, collect  # noqa: E402
from polyp_rt.batch.report import VideoRow  # noqa: E402
from polyp_rt.batch.runner import Watcher, plan_batch, run_batch  # noqa: E402
from polyp_rt.cli.main import main  # noqa: E402
from tests.batch.conftest import PIPELINE_CHANGED, changed, option_names, summary_rows  # noqa: E402
from tests.conftest import write_micro_onnx  # noqa: E402

CLIP = {"frames": 48, "fps": 24, "width": 160, "height": 128}


def make_clip(path: Path, seed: int, frames: int = CLIP["frames"]) -> Path:
    args = ["synth", "--video", str(path), "--frames", str(frames), "--seed", str(seed)]
    args += ["--fps", str(CLIP["fps"]), "--width", str(CLIP["width"]), "--height", str(CLIP["height"])]
    assert main(args) == 0
    shutil.rmtree(path.with_name(f"{path.stem}_masks"))  # the ground truth is not an input here
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three real H.264 clips (48 frames, 160x128): two seeds, one longer; made once."""
    root = tmp_path_factory.mktemp("clips")
    return {
        "a": make_clip(root / "a.mp4", seed=1),
        "b": make_clip(root / "b.mp4", seed=2),
        "long": make_clip(root / "long.mp4", seed=3, frames=96),
    }


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One embedded Ray (on 127.0.0.1, 2 CPUs) for every run in this module."""
    module = import_ray(local=True)
    start_ray(module, None, num_cpus=2)
    yield
    module.shutdown()


@pytest.fixture
def archive(tmp_path: Path, clips: dict[str, Path]) -> Path:
    """An archive folder: a.mp4, b.mp4, a corrupt video, and a second a.mp4 in a sub-folder."""
    root = tmp_path / "archive"
    (root / "day2").mkdir(parents=True)
    shutil.copy(clips["a"], root / "a.mp4")
    shutil.copy(clips["b"], root / "b.mp4")
    shutil.copy(clips["b"], root / "day2" / "a.mp4")  # same name, other folder, other content
    (root / "broken.mp4").write_bytes(os.urandom(4000))
    (root / "notes.pdf").write_bytes(b"not a video suffix: not collected from a folder")
    return root


def config(inputs: list[Path], out: Path, model: Path, **options: object) -> BatchConfig:
    return BatchConfig(inputs=inputs, out=out, model=model, **options)  # type: ignore[arg-type]


class Recorder(Watcher):
    """Keeps every event and row the driver reports."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.rows: list[VideoRow] = []
        self.todo: list[str] = []

    def planned(self, videos: list[Video], todo: list[Video], workers: int) -> None:
        self.todo = [v.name for v in todo]

    def event(self, event: Event) -> None:
        self.events.append(event)

    def finished(self, row: VideoRow) -> None:
        self.rows.append(row)


def decoded_frames(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def check_result_folder(folder: Path, source: Path, frames: int, attempt: int = 1) -> dict:
    """A complete result: every record once and in order, episodes and thumbnails that agree with
    them, the stats as `polyp-rt run` writes them; the recording and masks where asked."""
    records = list(iter_frames_jsonl(folder / "frames.jsonl"))
    assert [r["frame"] for r in records] == list(range(frames)), "each frame once, in order"
    for r in records:
        assert set(r) == {"frame", "t", "area", "max_prob", "polyp"}
        assert 0.0 <= r["area"] <= 1.0 and 0.0 <= r["max_prob"] <= 1.0
    saved = json.loads((folder / "episodes.json").read_text())
    assert saved["frames"] == frames and saved["input"] == str(source)
    recomputed = episodes(records, nominal_fps=saved["fps"])
    assert [{k: v for k, v in e.items() if k != "thumbnail"} for e in saved["episodes"]] == [
        e.to_dict() for e in recomputed
    ]
    thumbs = sorted(p.name for p in (folder / "peaks").iterdir())
    assert thumbs == sorted(f"{e.peak_frame:06d}.jpg" for e in recomputed), "one thumbnail per episode"
    for name in thumbs:
        assert cv2.imread(str(folder / "peaks" / name)) is not None
    stats = json.loads((folder / "stats.json").read_text())
    assert stats["reason"] == "end of stream" and stats["exit_code"] == 0 and stats["error"] is None
    assert stats["frames_processed"] == frames and stats["dropped_total"] == 0
    assert {"stages_ms", "e2e_ms", "engine", "config", "versions"} <= set(stats)
    assert stats["batch"]["attempt"] == attempt and stats["batch"]["input"] == str(source)
    assert stats["frame_records"]["path"] == str(folder / "frames.jsonl"), "paths name the final folder"
    assert not (folder / "worker.pid").exists()
    return stats


def test_local_run_writes_every_output(
    local_ray: None, archive: Path, micro_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["batch", str(archive), "--out", str(out), "--model", str(micro_onnx), "--record", "--masks"]
    args += ["--threshold", "0.3"]
    assert main(args) == 2, "one bad input: exit 2, the others done"
    closing = " ".join(capsys.readouterr().out.split())  # the closing table's caption, unfolded
    assert f"{3 * CLIP['frames']} frames in 00:" in closing and "× real time, over 1 worker " in closing

    rows = summary_rows(out)
    assert list(rows) == ["a.mp4", "b.mp4", "broken.mp4", "day2_a.mp4"], "name clash: distinct folders"
    assert rows["day2_a.mp4"]["input"] == str(archive / "day2" / "a.mp4")
    bad = rows["broken.mp4"]
    assert bad["status"] == "failed" and bad["episodes"] == ""
    assert bad["error"].startswith("SourceError: ") and "not a video FFmpeg can read" in bad["error"]
    assert "\n" not in bad["error"]
    assert not (out / "broken.mp4").exists(), "no result folder for a failed video"
    for name, source in (("a.mp4", "a.mp4"), ("b.mp4", "b.mp4"), ("day2_a.mp4", "day2/a.mp4")):
        row = rows[name]
        assert row["status"] == "ok" and row["error"] == "" and int(row["frames"]) == CLIP["frames"]
        assert float(row["duration_s"]) == pytest.approx(CLIP["frames"] / CLIP["fps"], abs=1e-3)
        stats = check_result_folder(out / name, archive / source, CLIP["frames"])
        assert int(row["episodes"]) == len(json.loads((out / name / "episodes.json").read_text())["episodes"])
        assert stats["recording"]["frames"] == CLIP["frames"]
        assert decoded_frames(out / name / "annotated.mp4") == CLIP["frames"]
        assert len(list((out / name / "masks").glob("*.png"))) == CLIP["frames"]
    assert sum(int(rows[n]["episodes"]) for n in ("a.mp4", "b.mp4")) > 0, "the clips show polyps"

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "polyp-rt batch manifest"
    assert sorted(manifest["videos"]) == ["a.mp4", "b.mp4", "day2_a.mp4"], "finished videos only"
    entry = manifest["videos"]["a.mp4"]
    assert entry["size"] == (archive / "a.mp4").stat().st_size and len(entry["sha256"]) == 64
    assert entry["mtime_ns"] == (archive / "a.mp4").stat().st_mtime_ns and entry["attempt"] == 1

    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "Failed videos (1)" in page
    assert page.count("data:image/jpeg;base64,") == sum(int(rows[n]["episodes"] or 0) for n in rows)
    assert sorted(p.name for p in out.iterdir()) == [
        ".lock",
        "a.mp4",
        "b.mp4",
        "day2_a.mp4",
        "manifest.json",
        "report.html",
        "summary.csv",
    ], "no work folders left, inputs untouched"
    assert sorted(p.name for p in archive.rglob("*")) == [
        "a.mp4",
        "a.mp4",
        "b.mp4",
        "broken.mp4",
        "day2",
        "notes.pdf",
    ]


def test_rerun_skips_finished_videos_and_redoes_changed_ones(
    local_ray: None, archive: Path, clips: dict[str, Path], micro_onnx: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = run_batch(config([archive], out, micro_onnx))
    assert first.exit_code == 2 and first.count("ok") == 3
    before = json.loads((out / "manifest.json").read_text())["videos"]
    a_stats = (out / "a.mp4" / "stats.json").read_bytes()

    shutil.copy(clips["long"], archive / "b.mp4")  # new content under the old name
    copy = archive / "a.mp4"
    os.utime(copy, ns=(time.time_ns(), copy.stat().st_mtime_ns + 10**9))  # touched, same content
    watcher = Recorder()
    second = run_batch(config([archive], out, micro_onnx), watcher)

    assert second.exit_code == 2
    assert sorted(watcher.todo) == ["b.mp4", "broken.mp4"], "the changed and the failed video only"
    assert {e.video for e in watcher.events} == {"b.mp4"}
    status = {name: row["status"] for name, row in summary_rows(out).items()}
    assert status == {
        "a.mp4": "skipped: unchanged",
        "b.mp4": "ok",
        "broken.mp4": "failed",
        "day2_a.mp4": "skipped: unchanged",
    }
    check_result_folder(out / "b.mp4", archive / "b.mp4", 96)
    assert (out / "a.mp4" / "stats.json").read_bytes() == a_stats, "a finished video is not redone"
    after = json.loads((out / "manifest.json").read_text())["videos"]
    assert after["b.mp4"]["sha256"] != before["b.mp4"]["sha256"] and after["b.mp4"]["frames"] == 96
    assert after["a.mp4"]["mtime_ns"] == copy.stat().st_mtime_ns, "the new time is recorded"
    assert after["day2_a.mp4"] == before["day2_a.mp4"]
    skipped = next(r for r in second.rows if r.name == "a.mp4")
    assert skipped.frames == CLIP["frames"] and skipped.episodes == first.rows[0].episodes, (
        "row from its results"
    )

    third = run_batch(config([archive / "a.mp4", archive / "day2" / "a.mp4"], out, micro_onnx))
    assert third.exit_code == 0 and [r.status for r in third.rows] == ["skipped: unchanged"] * 2
    assert [r.name for r in third.rows] == ["a.mp4", "day2_a.mp4"], "names kept across runs"


# a different value for every option of `polyp-rt batch` but its inputs and output folder, and
# the options that do not change results (where and how fast the videos run)
BATCH_CHANGED: dict[str, object] = {
    **PIPELINE_CHANGED,
    "record": True,
    "masks": True,
    "in_process": True,
    "ray_address": "127.0.0.1:6379",
    "workers": 3,
    "cpus_per_task": 1.0,
    "gpus_per_task": 1.0,
    "retries": 0,
    "truth": Path("truth"),  # --truth keeps the masks: a run without them is redone (set to a folder below)
    "gates": ["3:0"],  # the scoring options score a finished video again, the model does not run
    "metrics.lesion_gap": 3,  # (tests/batch/test_batch_truth.py)
    "metrics.tau": [1.0],
}
BATCH_NOT_RESULTS = {
    "gates",
    "metrics.lesion_gap",
    "metrics.tau",
    "device",
    "cuda_graph",
    "in_process",
    "ray_address",
    "workers",
    "cpus_per_task",
    "gpus_per_task",
    "retries",
}


def test_a_rerun_redoes_a_video_for_every_option_that_changes_results(
    local_ray: None, clips: dict[str, Path], micro_onnx: Path, tmp_path: Path
) -> None:
    assert option_names(BatchConfig) == set(BATCH_CHANGED) | {"inputs", "out", "model"}, "classify it"
    out = tmp_path / "out"
    base = config([clips["a"]], out, micro_onnx)
    assert run_batch(base).exit_code == 0
    paths = collect(base.inputs, out).videos

    (tmp_path / "truth").mkdir()
    changes = {**BATCH_CHANGED, "truth": tmp_path / "truth"}  # a folder that pairs with no video

    def redone(other: BatchConfig) -> bool:
        todo = list(plan_batch(other, out, paths).todo)
        assert todo in ([], ["a.mp4"])
        return todo == ["a.mp4"]

    assert not redone(base)
    for name, value in changes.items():
        assert redone(changed(base, name, value)) == (name not in BATCH_NOT_RESULTS), name
    assert redone(changed(base, "model", write_micro_onnx(tmp_path / "other.onnx", size=32)))

    before = (out / "a.mp4" / "stats.json").read_bytes()
    again = run_batch(changed(base, "workers", 1))
    assert [r.status for r in again.rows] == ["skipped: unchanged"]
    assert (out / "a.mp4" / "stats.json").read_bytes() == before
    redo = run_batch(changed(base, "overlay.min_area", 0.05))
    assert [r.status for r in redo.rows] == ["ok"] and redo.frames == CLIP["frames"]
    settings = json.loads((out / "manifest.json").read_text())["videos"]["a.mp4"]["settings"]
    assert settings["overlay"]["min_area"] == 0.05
    stats = check_result_folder(out / "a.mp4", clips["a"], CLIP["frames"])
    assert stats["config"]["overlay"]["min_area"] == 0.05, "the option reached the video's pipeline"


def wait_on_process(pid: int, condition: Callable[[], bool], timeout: float) -> None:
    """Wait until `condition` holds; between checks the wait is on the process (not our child:
    a pidfd), so one that dies ends the wait at once."""
    deadline = time.monotonic() + timeout
    fd = os.pidfd_open(pid)
    try:
        while not condition():
            assert time.monotonic() < deadline, f"timed out after {timeout} s"
            died, _, _ = select.select([fd], [], [], 0.01)
            assert not died or condition(), f"process {pid} ended first"
    finally:
        os.close(fd)


class KillFirstAttempt(Recorder):
    """SIGKILLs the worker of `video`'s first attempt once it has written frame records.

    The driver takes no event while this runs, and the event queue holds one event (one worker),
    so the worker cannot finish the video meanwhile: it waits to report its next progress."""

    def __init__(self, video: str) -> None:
        super().__init__()
        self.video = video
        self.killed: int | None = None
        self.records_before_kill = 0

    def event(self, event: Event) -> None:
        super().event(event)
        if event.kind != STARTED or event.video != self.video or event.attempt != 1:
            return
        records = Path(event.work_dir) / "frames.jsonl"
        wait_on_process(event.pid, lambda: records.is_file() and records.stat().st_size > 0, 60)
        self.records_before_kill = len(records.read_text().splitlines())
        os.kill(event.pid, signal.SIGKILL)
        self.killed = event.pid


def test_worker_sigkilled_mid_video_is_retried_and_the_result_is_whole(
    local_ray: None, clips: dict[str, Path], micro_onnx: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    watcher = KillFirstAttempt("long.mp4")
    result = run_batch(config([clips["long"]], out, micro_onnx, workers=1, retries=2), watcher)

    assert watcher.killed is not None and watcher.records_before_kill >= 1, "killed mid-video"
    assert result.exit_code == 0 and [r.status for r in result.rows] == ["ok"]
    attempts = {e.attempt for e in watcher.events}
    assert attempts == {1, 2}
    assert {e.pid for e in watcher.events if e.attempt == 2} != {watcher.killed}, "a new worker process"
    assert any(e.kind == FRAMES and e.attempt == 2 for e in watcher.events)
    stats = check_result_folder(out / "long.mp4", clips["long"], 96, attempt=2)
    assert stats["batch"]["pid"] != watcher.killed
    assert json.loads((out / "manifest.json").read_text())["videos"]["long.mp4"]["attempt"] == 2
    assert not (out / ".work").exists(), "the killed attempt's work folder is gone"


def test_list_file_and_bad_arguments(micro_onnx: Path, clips: dict[str, Path], tmp_path: Path) -> None:
    from polyp_rt.batch.inputs import collect, name_videos

    listing = tmp_path / "videos.txt"
    listing.write_text(f"# the archive\n{clips['a']}\n\n{clips['b'].name}\n{clips['a']}\n")
    shutil.copy(clips["b"], tmp_path / clips["b"].name)
    found = collect([listing], tmp_path / "out").videos
    assert found == [clips["a"].resolve(), (tmp_path / "b.mp4").resolve()], "relative to the list, once"
    named = name_videos([Path("/x/case.mp4"), Path("/y/case.mp4"), Path("/z/y/case.mp4")], {})
    assert [v.name for v in named] == ["case.mp4", "y_case.mp4", "case.mp4-2"]
    kept = name_videos([Path("/y/case.mp4")], {"case.mp4": "/x/case.mp4", "y_case.mp4": "/y/case.mp4"})
    assert [v.name for v in kept] == ["y_case.mp4"]

    (tmp_path / "out").mkdir()
    (tmp_path / "empty").mkdir()
    inside = tmp_path / "out" / "old.mp4"
    shutil.copy(clips["a"], inside)
    cases = [
        (["--out", str(tmp_path / "out"), str(inside)], "inside the output folder"),
        (["--out", str(tmp_path / "o"), str(tmp_path / "missing.mp4")], "no such file or folder"),
        (["--out", str(tmp_path / "o"), str(tmp_path / "empty")], "no videos in this folder"),
    ]
    for args, message in cases:
        with pytest.raises(Exception, match=message):
            run_batch(config([Path(args[2])], Path(args[1]), micro_onnx))
    for flag in ("--workers 0", "--gpus-per-task -1", "--cpus-per-task 0", "--retries 101", "--min-area 0"):
        with pytest.raises(SystemExit) as exit_info:
            main(["batch", str(clips["a"]), "--out", str(tmp_path / "o"), *flag.split()])
        assert exit_info.value.code == 2, flag


def test_a_cpu_task_no_node_can_hold_is_one_line_not_a_wait(
    local_ray: None, clips: dict[str, Path], micro_onnx: Path, tmp_path: Path
) -> None:
    """The module's Ray has one node of 2 CPUs: a task asking 3 would never be scheduled."""
    out = tmp_path / "out"
    with pytest.raises(
        PolypRtError, match=r"--cpus-per-task 3: no node of the Ray cluster has that many CPUs"
    ):
        run_batch(config([clips["a"]], out, micro_onnx, workers=1, cpus_per_task=3.0))
    assert [r["status"] for r in summary_rows(out).values()] == ["skipped: the batch failed"]
