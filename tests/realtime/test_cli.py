import subprocess
import sys
from pathlib import Path

import pytest


def polyp_rt(*args: str, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "polyp_rt.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def test_help_lists_every_subcommand():
    out = polyp_rt("--help")
    assert out.returncode == 0
    for command in ("run", "train", "eval", "synth", "export", "build", "bench", "info"):
        assert f"    {command} " in out.stdout


def test_help_does_not_import_heavy_packages():
    code = (
        "import sys; from polyp_rt.cli.main import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'onnxruntime', 'av', 'cv2', 'tensorrt') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_version():
    out = polyp_rt("--version")
    assert out.returncode == 0 and out.stdout.startswith("polyp-rt ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--data", "/nonexistent/data"], "error: /nonexistent/data: data folder not found"),
        (["eval", "--data", "/nonexistent", "--model", "/nonexistent/m.onnx"], "error: /nonexistent"),
        (["export", "--checkpoint", "/nonexistent/best.pt", "-o", "/tmp/x.onnx"], "checkpoint not found"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(args, message, tmp_path):
    out = polyp_rt(*args, cwd=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing written: no empty run folder, no partial file
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in out.stderr
