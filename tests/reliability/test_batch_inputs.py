"""Batch inputs (issue 33, class 12): symbolic links named after their target, an earlier batch's
annotated recordings taken for procedures, a FIFO named .mp4 that hung the batch. Real Ray, real
clips, `polyp-rt batch` as a real process."""

from __future__ import annotations

import csv
import json
import os
import threading
from pathlib import Path

import pytest

from polyp_rt.batch.inputs import name_videos
from polyp_rt.batch.manifest import Fingerprint, Manifest, sha256_of
from polyp_rt.core.errors import InputFileError
from tests.reliability.batch_cli import make_clip, polyp_rt


def summary(out: Path) -> dict[str, dict[str, str]]:
    with (out / "summary.csv").open(newline="", encoding="utf-8") as f:
        return {row["video"]: row for row in csv.DictReader(f)}


def test_inputs_are_named_as_given_and_what_is_not_a_video_file_is_skipped(
    micro_onnx: Path, tmp_path: Path
) -> None:
    pytest.importorskip("ray")
    clip = make_clip(tmp_path / "recorder" / "clip.mp4")
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "case_0141.mp4").symlink_to(clip)  # two cases, one file
    (archive / "case_0142.mp4").symlink_to(clip)
    (archive / "gone.mp4").symlink_to(tmp_path / "moved-away.mp4")
    os.mkfifo(archive / "live.mp4")
    earlier = archive / "results"  # an earlier batch's output, kept beside the videos
    model = ["--model", str(micro_onnx)]
    first = polyp_rt(["batch", str(clip), "--out", str(earlier), *model, "--record"])
    assert first.returncode == 0, (first.stdout + first.stderr)[-2000:]
    recording = earlier / "clip.mp4" / "annotated.mp4"
    assert recording.is_file()
    earlier_files = {p: p.read_bytes() for p in earlier.rglob("*") if p.is_file()}

    out = tmp_path / "out"
    done = polyp_rt(["batch", str(archive), str(recording), "--out", str(out), *model], timeout=240)
    log = done.stderr.decode()
    assert done.returncode == 0, log[-3000:]
    rows = summary(out)
    assert list(rows) == ["case_0141.mp4", "case_0142.mp4", "gone.mp4", "live.mp4", "annotated.mp4"]
    for case in ("case_0141.mp4", "case_0142.mp4"):
        assert rows[case]["status"] == "ok" and rows[case]["input"] == str(archive / case), "as given"
        stats = json.loads((out / case / "stats.json").read_text(encoding="utf-8"))
        assert stats["batch"]["input"] == str(archive / case)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["videos"]
    assert {name: entry["input"] for name, entry in manifest.items()} == {
        "case_0141.mp4": str(archive / "case_0141.mp4"),
        "case_0142.mp4": str(archive / "case_0142.mp4"),
    }, "the skipped inputs are not recorded as finished"

    refused = {
        "gone.mp4": ("skipped: not a regular file", "a broken symbolic link"),
        "live.mp4": ("skipped: not a regular file", "a FIFO (named pipe), not a regular file"),
        "annotated.mp4": (
            "skipped: a batch's output",
            f"an output of an earlier polyp-rt batch (in {earlier}, which holds its manifest.json)",
        ),
    }
    for name, (status, why) in refused.items():
        assert (rows[name]["status"], rows[name]["error"]) == (status, why)
        assert rows[name]["episodes"] == rows[name]["duration_s"] == "", "not opened: nothing counted"
        assert not (out / name).exists()
    path_of = {"gone.mp4": archive / "gone.mp4", "live.mp4": archive / "live.mp4", "annotated.mp4": recording}
    for name, (_, why) in refused.items():
        assert log.count(f"{path_of[name]}: {why}; skipped") == 1, "one line naming it"
    assert f"{earlier}: the output folder of an earlier polyp-rt batch" in log, "not searched, and said"
    assert "5 videos: 2 ok, 0 failed, 3 skipped" in done.stdout.decode(), "counted as skipped"
    assert {p: p.read_bytes() for p in earlier.rglob("*") if p.is_file()} == earlier_files

    alone = polyp_rt(["batch", str(archive / "live.mp4"), "--out", str(tmp_path / "o2"), *model])
    assert alone.returncode == 2
    assert alone.stderr.decode().splitlines()[-1] == (
        f"error: no videos to process: the inputs name none ({archive / 'live.mp4'}: a FIFO (named "
        "pipe), not a regular file)"
    )


def test_a_fifo_is_refused_before_a_byte_is_read(tmp_path: Path) -> None:
    """One level down, the worker's own check: the fingerprint of a FIFO (swapped in after the
    inputs were collected) is refused at once instead of waiting for a writer forever."""
    fifo = tmp_path / "swapped.mp4"
    os.mkfifo(fifo)
    errors: list[BaseException] = []

    def fingerprint() -> None:
        for take in (Fingerprint.of, sha256_of):
            try:
                take(fifo)
            except BaseException as exc:
                errors.append(exc)

    thread = threading.Thread(target=fingerprint, daemon=True)
    thread.start()
    thread.join(timeout=30)
    if thread.is_alive():  # let the old code's blocked open() go before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert not thread.is_alive(), "waited on the FIFO"
    assert len(errors) == 2 and all(isinstance(e, InputFileError) for e in errors)
    assert str(errors[0]) == f"{fifo}: a FIFO (named pipe), not a regular file"


def test_results_recorded_under_the_real_path_keep_their_name_through_a_linked_folder(tmp_path: Path) -> None:
    """An output folder written when inputs were recorded under their real path: an archive
    reached through a linked folder (/data -> /nfs) keeps its names and results; a link of another
    name to the same file is a video of its own."""
    real = tmp_path / "nfs" / "archive" / "a.mp4"
    real.parent.mkdir(parents=True)
    real.write_bytes(b"a recording")
    (tmp_path / "data").symlink_to(tmp_path / "nfs")
    given = tmp_path / "data" / "archive" / "a.mp4"
    (tmp_path / "case_0141.mp4").symlink_to(real)
    known = {"a.mp4": str(real)}
    assert [v.name for v in name_videos([given, tmp_path / "case_0141.mp4"], known)] == [
        "a.mp4",
        "case_0141.mp4",
    ]

    out = tmp_path / "out"
    (out / "a.mp4").mkdir(parents=True)
    mark = Fingerprint.of(real)
    entry = {"input": str(real), "size": mark.size, "mtime_ns": mark.mtime_ns, "sha256": mark.sha256}
    manifest = Manifest(out / "manifest.json", {"a.mp4": {**entry, "settings": {"threshold": 0.5}}})
    assert manifest.finished("a.mp4", given, {"threshold": 0.5}, out) is not None, "still finished"
    assert manifest.videos["a.mp4"]["input"] == str(given), "recorded as named from now on"
    assert manifest.finished("a.mp4", tmp_path / "case_0141.mp4", {"threshold": 0.5}, out) is None
