"""Output folders that cannot be made: `batch --out`, `synth --out`, `synth --video` (and the
other outputs made through core/paths.py) on a read-only folder, below a file, or where the file
system refuses a folder, are one line naming the path and the reason, exit 2, and nothing is made
(before the fix: `internal error: FileNotFoundError / PermissionError / NotADirectoryError`, exit 1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from polyp_rt.cli.main import main
from polyp_rt.core.errors import OutputError
from polyp_rt.realtime.config import DEMO_CLIP, DEMO_MODEL

# (argv with OUT for the output path, the output path with X for the work folder)
COMMANDS = {
    "synth --out": ["synth", "--out", "OUT", "--count", "2", "--size", "32"],
    "synth --video": ["synth", "--video", "OUT/clip.mp4", "--frames", "3", "--width", "64", "--height", "48"],
    "batch --out": ["batch", "CLIP", "--out", "OUT", "--model", "MODEL", "--device", "cpu"],
}
# where an output folder cannot be made, and what the line says about it
UNMAKEABLE = {
    "below a file": ("X/a_file/out", "a_file is a file, not a folder"),
    "in /proc": ("/proc/polyp-rt-test/out", "/proc"),
    "in /sys (the file system refuses)": ("/sys/polyp-rt-test", "/sys"),
}


def argv_for(name: str, out: str, clip: Path, model: Path) -> list[str]:
    return [
        a.replace("OUT", out).replace("CLIP", str(clip)).replace("MODEL", str(model)) for a in COMMANDS[name]
    ]


@pytest.mark.parametrize("where", UNMAKEABLE)
@pytest.mark.parametrize("name", COMMANDS)
def test_an_output_folder_that_cannot_be_made_is_one_line(
    tmp_path, synthetic_clip, micro_onnx, capsys, one_error_line, name, where
):
    (tmp_path / "a_file").write_text("a file, not a folder")
    out, said = UNMAKEABLE[where]
    out = out.replace("X", str(tmp_path))
    before = sorted(tmp_path.rglob("*"))
    assert main(argv_for(name, out, synthetic_clip, micro_onnx)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {out}") and said in line
    assert "internal error" not in line
    assert sorted(tmp_path.rglob("*")) == before  # nothing made
    assert not Path(out).exists()


# Linux capabilities that let root write a folder whatever its mode (capability(7))
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 1, 2, 3
PR_CAPBSET_DROP = 24


def without_root_overrides() -> None:
    """In the child, before exec: drop the capabilities that let root ignore a folder's mode, so
    the command meets a read-only folder as any user does."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


@pytest.mark.parametrize("name", COMMANDS)
def test_a_read_only_output_folder_is_one_line(tmp_path, one_error_line, name):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    out = str(folder / "out")
    args = argv_for(name, out, DEMO_CLIP, DEMO_MODEL)
    proc = subprocess.run(
        [sys.executable, "-m", "polyp_rt.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=without_root_overrides if os.geteuid() == 0 else None,
    )
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc.stderr)
    assert line.startswith(f"error: {out}") and "Permission denied" in line
    assert list(folder.iterdir()) == []


def test_make_folder_and_make_parent_name_the_path_and_the_reason(tmp_path):
    from polyp_rt.core.paths import make_folder, make_parent

    (tmp_path / "a_file").write_text("x")
    with pytest.raises(
        OutputError, match=r"a_file/masks: the masks folder cannot be created \(Not a directory\)"
    ):
        make_folder(tmp_path / "a_file" / "masks", "the masks folder")
    with pytest.raises(OutputError, match=r"a_file: --out cannot be created \(is a file, not a folder\)"):
        make_folder(tmp_path / "a_file", "--out")
    with pytest.raises(
        OutputError, match=r"rec.mp4: --record cannot be created: its folder .*a_file/x: Not a"
    ):
        make_parent(tmp_path / "a_file" / "x" / "rec.mp4", "--record")
    assert make_folder(tmp_path / "a" / "b", "--out").is_dir()
    assert make_parent(tmp_path / "c" / "rec.mp4", "--record") == tmp_path / "c" / "rec.mp4"
    assert (tmp_path / "c").is_dir()
