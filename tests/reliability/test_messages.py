"""Messages that misled: the line must say what is actually wrong. (Bad model files: test_bad_models.py;
unwritable output paths: test_outputs.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from polyp_rt.cli.main import main


def test_a_device_file_is_not_called_missing(micro_onnx, capsys, one_error_line):
    args = ["--source", "/dev/null", "--model", str(micro_onnx), "--device", "cpu", "--headless"]
    assert main(args) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("error: /dev/null: a character device, not a video file;")
    assert "not found" not in line


def test_a_missing_camera_is_our_line_alone(micro_onnx, cli, one_error_line):
    if Path("/dev/video7").exists():
        pytest.skip("this machine has a /dev/video7")
    proc = cli(["--source", "7", "--model", str(micro_onnx), "--device", "cpu", "--headless"])
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert one_error_line(err).startswith("error: camera 7: cannot open it (/dev/video7 missing or busy)")
    assert "WARN" not in err  # OpenCV's own log lines are silenced while it opens the device
