"""Helpers of the batch cases in the fault suite: real clips, `polyp-rt batch` and `run` as real
processes (bytes out, so a raw control character or an undecodable byte is seen as it is), and a
wait on a process that ends as soon as the process does."""

from __future__ import annotations

import os
import select
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

CLIP = {"fps": 24, "width": 160, "height": 128}


def needs_ray() -> None:
    """Skip the module where Ray (the batch extra) is not installed."""
    pytest.importorskip("ray", reason='polyp-rt batch needs Ray: pip install "polyp-rt[batch]"')


def make_clip(path: Path, frames: int = 12, seed: int = 1) -> Path:
    """A real H.264 clip of synthetic colonoscopy (`polyp-rt synth --video`), without its masks."""
    from polyp_rt.cli.main import main

    args = ["synth", "--video", str(path), "--frames", str(frames), "--seed", str(seed)]
    args += ["--fps", str(CLIP["fps"]), "--width", str(CLIP["width"]), "--height", str(CLIP["height"])]
    assert main(args) == 0
    shutil.rmtree(path.with_name(f"{path.stem}_masks"))
    return path


def command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "polyp_rt.cli.main", *args]


def environment(**extra: str) -> dict[str, str]:
    """The tests' environment for a `polyp-rt` process: a wide terminal (no folded names)."""
    return {**os.environ, "COLUMNS": "1000", **extra}


def polyp_rt(
    args: list[str], timeout: float = 300, umask: int | None = None, **env: str
) -> subprocess.CompletedProcess[bytes]:
    """`polyp-rt ARGS` run to its end in a real process (under `umask`, if given)."""
    if umask is not None:
        line = " ".join(shlex.quote(a) for a in command(args))
        cmd = ["/bin/sh", "-c", f"umask {umask:03o} && exec {line}"]
    else:
        cmd = command(args)
    return subprocess.run(cmd, capture_output=True, timeout=timeout, env=environment(**env), check=False)


def wait_on_process(pid: int, condition: Callable[[], bool], timeout: float) -> None:
    """Wait until `condition` holds; between checks the wait is on the process (a pidfd), so one
    that ends ends the wait at once."""
    deadline = time.monotonic() + timeout
    fd = os.pidfd_open(pid)
    try:
        while not condition():
            assert time.monotonic() < deadline, f"timed out after {timeout} s"
            ended, _, _ = select.select([fd], [], [], 0.02)
            assert not ended or condition(), f"process {pid} ended first"
    finally:
        os.close(fd)


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Whether the process `pid` (not necessarily our child) ended within `timeout` s."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        ended, _, _ = select.select([fd], [], [], timeout)
        return bool(ended)
    finally:
        os.close(fd)
