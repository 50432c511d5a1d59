"""The browser views' fixtures: a real server (in this process or as `polyp-rt` itself), real HTTP
and WebSocket clients, and headless Chromium driven over the DevTools protocol."""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from polyp_rt.engines.registry import open_engine  # noqa: E402
from polyp_rt.realtime.config import DEMO_MODEL_INT8  # noqa: E402
from polyp_rt.web.config import ServeConfig  # noqa: E402
from tests.chromium import cdp  # noqa: E402

URL = re.compile(r"(http://\S+)")


def write_polyp_image(path: Path, size: tuple[int, int] = (480, 640)) -> Path:
    """A 640x480 PNG: dull tissue with one bright pink disc (the bundled model outlines it)."""
    h, w = size
    rng = np.random.default_rng(3)
    image = rng.integers(60, 100, (h, w, 3), dtype=np.uint8)
    cv2.circle(image, (w // 2, h // 2), min(h, w) // 6, (200, 170, 225), -1)
    cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def polyp_image():
    return write_polyp_image


@pytest.fixture(scope="session")
def model() -> Path:
    if not DEMO_MODEL_INT8.is_file():
        pytest.skip("the bundled INT8 model is not in samples/")
    return DEMO_MODEL_INT8


@pytest.fixture(scope="session")
def engine(model):
    with open_engine(model, device="cpu") as opened:
        yield opened


@dataclass
class Served:
    url: str  # the base URL, with the token where there is one
    base: str  # without it
    token: str | None
    root: Path  # the server's upload folder


@pytest.fixture
def upload_server(engine, model) -> Iterator[Any]:
    """start(**ServeConfig fields) -> Served: the upload page in this process, stopped after the test."""
    from polyp_rt.web.server import start_upload_page

    with ExitStack() as stack:

        def start(**options: Any) -> Served:
            config = ServeConfig(**{"listen": "127.0.0.1:0", **options})
            server = start_upload_page(config, engine, model, stack)
            uploads = server.views.uploads
            assert uploads is not None
            return Served(server.url, server.access.address.url(""), server.access.token, uploads.root)

        yield start


@dataclass
class LiveRun:
    """`polyp-rt --source ... --serve ...` as its own process."""

    proc: subprocess.Popen[str]
    url: str
    lines: list[str] = field(default_factory=list)

    def finish(self, timeout: float = 120.0) -> int:
        return self.proc.wait(timeout=timeout)


def keep(lines: queue.Queue[str | None], into: list[str]) -> None:
    """The rest of a process's output, as it comes."""
    while (line := lines.get()) is not None:
        into.append(line)


@pytest.fixture
def live_run(tmp_path) -> Iterator[Any]:
    """start(*args) -> LiveRun: the CLI with a synthetic live source, its URL read from its output."""
    runs: list[subprocess.Popen[str]] = []

    def start(*args: str, source: str = "synthetic:640x480@30") -> LiveRun:
        command = [sys.executable, "-m", "polyp_rt.cli.main", "--source", source, "--headless", *args]
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path
        )
        runs.append(proc)
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        seen = []
        while (line := lines.get(timeout=120)) is not None:
            seen.append(line)
            if line.startswith("live view:"):
                match = URL.search(line)
                assert match, line
                run = LiveRun(proc, match.group(1), seen)

                threading.Thread(target=keep, args=(lines, run.lines), daemon=True).start()
                return run
        raise AssertionError("polyp-rt ended before it served the live view:\n" + "".join(seen))

    yield start
    for proc in runs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if cdp.chromium() is None:
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    with cdp.Chromium(width=1280, height=860) as chrome:
        yield chrome
