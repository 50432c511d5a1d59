"""What a batch writes (issue 33, classes 9 and 10): the permissions of its files (report.html and
summary.csv, which show patient frames and names, were 0644 whatever the umask), and a manifest
whose names lead outside the output folder (a rerun renamed, deleted and replaced that folder).
Real Ray, real clips, `polyp-rt batch` as a real process."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from polyp_rt.batch.manifest import Manifest
from polyp_rt.core.errors import InputFileError
from polyp_rt.core.files import write_atomic, write_json
from tests.reliability.batch_cli import make_clip, polyp_rt


def snapshot(*folders: Path) -> dict[Path, bytes | str]:
    """Every file's bytes and every folder (and link) under `folders`."""
    found: dict[Path, bytes | str] = {}
    for folder in folders:
        for path in [folder, *folder.rglob("*")]:
            if path.is_symlink():
                found[path] = "link " + os.readlink(path)
            elif path.is_dir():
                found[path] = "folder"
            else:
                found[path] = path.read_bytes()
    return found


def test_every_file_a_batch_writes_honours_the_umask(micro_onnx: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    clip = make_clip(tmp_path / "in" / "a.mp4")
    out = tmp_path / "out"
    args = ["batch", str(clip), "--out", str(out), "--model", str(micro_onnx), "--record", "--masks"]
    done = polyp_rt(args, umask=0o077)
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]
    written = [out, *out.rglob("*")]
    assert {"summary.csv", "report.html", "manifest.json", "annotated.mp4", "000000.png"} <= {
        p.name for p in written
    }
    for path in written:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)} under umask 077"


def test_an_atomic_write_makes_its_file_as_open_would(tmp_path: Path) -> None:
    before = os.umask(0o002)
    try:
        write_atomic(tmp_path / "shared.csv", "a,b\n")
        write_json(tmp_path / "shared.json", {"a": 1})
        os.umask(0o027)
        write_atomic(tmp_path / "private.html", b"<!doctype html>")
    finally:
        os.umask(before)
    assert (tmp_path / "shared.csv").stat().st_mode & 0o777 == 0o664, "a group that shares files"
    assert (tmp_path / "shared.json").stat().st_mode & 0o777 == 0o664
    assert (tmp_path / "private.html").stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["private.html", "shared.csv", "shared.json"]


def test_a_manifest_naming_a_folder_outside_out_is_refused_and_nothing_is_touched(
    micro_onnx: Path, tmp_path: Path
) -> None:
    pytest.importorskip("ray")
    clip = make_clip(tmp_path / "in" / "a.mp4")
    out = tmp_path / "out"
    args = ["batch", str(clip), "--out", str(out), "--model", str(micro_onnx)]
    assert polyp_rt(args).returncode == 0
    manifest = out / "manifest.json"
    victim = tmp_path / "victim"  # a folder beside --out: another study's results
    victim.mkdir()
    (victim / "patients.csv").write_text("id,name\n1,A\n")
    original = json.loads(manifest.read_text())

    for name in ("../victim", str(victim)):
        videos = {name: original["videos"]["a.mp4"]}  # the entry of a.mp4, renamed
        manifest.write_text(json.dumps({**original, "videos": videos}))
        before = snapshot(out, victim, clip.parent)
        done = polyp_rt(args)
        assert done.returncode == 2, (done.stdout + done.stderr)[-2000:]
        assert [line for line in done.stderr.decode().splitlines() if line.strip()] == [
            f'error: {manifest}: its entry "{name}" is not a folder name inside {out}; the manifest was '
            "edited or belongs elsewhere, so nothing was touched: move it away to redo every video"
        ]
        assert snapshot(out, victim, clip.parent) == before, f"{name}: nothing renamed, deleted or written"


def test_every_name_the_manifest_reads_back_is_checked(tmp_path: Path) -> None:
    """One level down: each kind of name that would lead the driver outside --out, or onto a
    file of its own, refuses the whole manifest."""
    out = tmp_path / "out"
    (out / "ok.mp4").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (out / "linked.mp4").symlink_to(tmp_path / "elsewhere")
    entry = {"input": "/in/ok.mp4", "size": 1, "mtime_ns": 1, "sha256": "0" * 64, "settings": {}}
    problems = {
        "..": "is not a folder name inside",
        "../x": "is not a folder name inside",
        "/etc": "is not a folder name inside",
        "a/../../x": "is not a folder name inside",
        "": "is not a folder name inside",
        ".work": "names .work, which is not a video's folder",
        "summary.csv": "names summary.csv, which is not a video's folder",
        "linked.mp4": f"is a symbolic link to {tmp_path / 'elsewhere'}, not a folder of results",
    }
    document = {"format": "polyp-rt batch manifest", "version": 1}
    for name, problem in problems.items():
        write_json(out / "manifest.json", {**document, "videos": {name: entry}})
        with pytest.raises(InputFileError) as refused:
            Manifest.load(out / "manifest.json")
        assert str(refused.value).startswith(f'{out / "manifest.json"}: its entry "{name}" {problem}'), name
    write_json(out / "manifest.json", {**document, "videos": {"ok.mp4": ["not", "a", "record"]}})
    with pytest.raises(InputFileError, match='entry "ok.mp4" is not a record of a finished video'):
        Manifest.load(out / "manifest.json")
    write_json(out / "manifest.json", {**document, "videos": {"ok.mp4": entry}})
    assert list(Manifest.load(out / "manifest.json").videos) == ["ok.mp4"]
