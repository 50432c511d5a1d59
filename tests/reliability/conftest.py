"""Helpers of the fault suite: the CLI in a real process, clips with a known layout, a local
HTTP video server that misbehaves on cue, and checks that a recording was finalised."""

from __future__ import annotations

import base64
import http.server
import os
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from polyp_rt.core.errors import SourceError
from polyp_rt.realtime import sources
from polyp_rt.realtime.config import CaptureConfig
from polyp_rt.realtime.sources import SourceStalled, SyntheticSource


def pipeline_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("polyp-rt")]


@pytest.fixture
def no_pipeline_threads() -> Callable[[], list[str]]:
    return pipeline_threads


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.fixture
def one_error_line() -> Callable[[str], str]:
    """The one `error:` line in a CLI's stderr (fails if there are none or several)."""

    def check(stderr: str) -> str:
        lines = error_lines(stderr)
        assert len(lines) == 1, stderr
        assert "Traceback" not in stderr, stderr
        return lines[0]

    return check


# ------------------------------------------------------------------ the CLI in its own process


def cli_process(args: list[str], fsize_limit: int | None = None) -> subprocess.Popen[str]:
    """`polyp-rt ARGS` as a real process; `fsize_limit`: files it writes fail past this size (EFBIG)."""
    if fsize_limit is None:
        cmd = [sys.executable, "-m", "polyp_rt.cli.main", *args]
    else:  # a disk that fills up: RLIMIT_FSIZE, with SIGXFSZ ignored so the write fails instead
        code = (
            "import resource, runpy, signal, sys\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({fsize_limit}, {fsize_limit}))\n"
            "sys.argv = ['polyp-rt', *sys.argv[1:]]\n"
            "runpy.run_module('polyp_rt.cli.main', run_name='__main__')\n"
        )
        cmd = [sys.executable, "-c", code, *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def cli() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Starts `polyp-rt` processes; any still running when the test ends is killed."""
    started: list[subprocess.Popen[str]] = []

    def start(args: list[str], fsize_limit: int | None = None) -> subprocess.Popen[str]:
        started.append(cli_process(args, fsize_limit))
        return started[-1]

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


# ------------------------------------------------------------------ clips


def encode_clip(
    path: Path, frames: int = 48, size: tuple[int, int] = (160, 128), fps: int = 24, options=None
) -> Path:
    """An H.264 clip with moving content; `options` are the muxer's (e.g. movflags)."""
    import av

    w, h = size
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream("libx264", rate=fps, options={"g": "12", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        rng = np.random.default_rng(0)
        for i in range(frames):
            rgb = rng.integers(30, 90, (h, w, 3), dtype=np.uint8)
            x = (i * 3) % (w - 30)
            rgb[h // 4 : h // 2, x : x + 30] = (220, 160, 170)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))
    return path


@pytest.fixture
def make_clip() -> Callable[..., Path]:
    return encode_clip


# ------------------------------------------------------------------ finalised recordings


def mp4_boxes(path: Path) -> list[str]:
    """Top-level MP4 box types, in file order."""
    data, boxes, at = path.read_bytes(), [], 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        if size == 1:
            size = struct.unpack(">Q", data[at + 8 : at + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        at += size
    return boxes


MKV_CUES = bytes.fromhex("1C53BB6B")  # the Matroska Cues element, written when the file is closed


def is_finalised(path: Path) -> bool:
    """MP4: the closing `mfra` index is there; MKV: the cues and the duration are."""
    import av

    if path.suffix == ".mp4":
        return mp4_boxes(path)[-1:] == ["mfra"]
    with av.open(str(path)) as container:
        return MKV_CUES in path.read_bytes() and container.duration is not None


@pytest.fixture
def finalised() -> Callable[[Path], bool]:
    return is_finalised


# ------------------------------------------------------------------ a live HTTP stream


class StreamServer:
    """Serves an MPEG-TS H.264 stream on 127.0.0.1; `plan` says what each connection gets.

    "full": the whole stream; "cut": the first third, then the connection is closed;
    "stall": the first third, then nothing while the connection stays open. After the
    plan's last connection with `gone=True` the server closes its socket (connection refused).
    With `credentials` ("user:password") it asks for HTTP Basic authentication first, as a
    camera's server does; `requests` holds (path with query, Authorization) of each request.
    """

    def __init__(self, stream: bytes, plan: list[str], gone: bool = False, credentials: str = "") -> None:
        self.stream, self.plan, self.gone = stream, plan, gone
        self.connections = 0
        self.requests: list[tuple[str, str]] = []
        self.release = threading.Event()  # ends the stalls
        expected = "Basic " + base64.b64encode(credentials.encode()).decode() if credentials else ""
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                given = self.headers.get("Authorization", "")
                server.requests.append((self.path, given))
                if given != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="camera"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                index = server.connections
                server.connections += 1
                what = server.plan[min(index, len(server.plan) - 1)]
                self.send_response(200)
                self.send_header("Content-Type", "video/mp2t")
                self.end_headers()
                third = len(server.stream) // 3 // 188 * 188  # whole TS packets
                try:
                    self.wfile.write(server.stream if what == "full" else server.stream[:third])
                    self.wfile.flush()
                except OSError:
                    return  # the client went away
                if what == "stall":
                    server.release.wait(60)
                if server.gone and index + 1 >= len(server.plan):
                    threading.Thread(target=server.close).start()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/live.ts"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="test http server", daemon=True)
        self.thread.start()
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.httpd.shutdown()
            self.httpd.server_close()


@pytest.fixture(scope="session")
def ts_stream(tmp_path_factory) -> bytes:
    """An 8 s MPEG-TS H.264 stream (96x80, 30 fps), encoded with PyAV."""
    path = tmp_path_factory.mktemp("stream") / "live.ts"
    return encode_clip(path, frames=240, size=(96, 80), fps=30).read_bytes()


@pytest.fixture
def stream_server(ts_stream) -> Iterator[Callable[..., StreamServer]]:
    servers: list[StreamServer] = []

    def start(plan: list[str], gone: bool = False, credentials: str = "") -> StreamServer:
        servers.append(StreamServer(ts_stream, plan, gone, credentials))
        return servers[-1]

    yield start
    for server in servers:
        server.release.set()
        server.close()


# ------------------------------------------------------------------ memory


def rss_mb() -> float:
    """This process's resident set size (VmRSS), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.fixture
def rss() -> Callable[[], float]:
    if not Path("/proc/self/status").is_file():
        pytest.skip("needs /proc (Linux)")
    return rss_mb


# ------------------------------------------------------------------ fault injection (test-only)
# Test-only fault injection: a synthetic live source that stalls, fails or vanishes on cue.
#
# `faulty:WxH@FPS?stall_at=N&stall_s=S&fail_at=N&faults=C&gone_at=N` is the synthetic source
# with faults after N frames of each of the first C connections (default: every connection):
# a stall of S seconds, or a lost device; gone_at=N: unplugged for good after N frames in all
# (reads and reopening fail). Registered as a --source kind by tests/reliability/conftest.py.
# A user's Ctrl-C on cue: interrupt_at=N sends this process SIGINT when frame N is read;
# interrupts_on_close=K sends K more when the source is closed, that is while the stopped run
# finishes (after the recording is finalised, before the statistics are written).

PREFIX = "faulty:"


class FaultySource(SyntheticSource):
    PARAMS = (
        *SyntheticSource.PARAMS,
        *("stall_at", "stall_s", "fail_at", "faults", "gone_at", "interrupt_at", "interrupts_on_close"),
    )

    def __init__(self, spec: str, options: CaptureConfig) -> None:
        super().__init__("synthetic:" + spec.removeprefix(PREFIX), options)
        self.stall_at = self.int_param("stall_at", -1)
        self.stall_s = float(self.params.get("stall_s", 3600))
        self.fail_at = self.int_param("fail_at", -1)
        self.faulty_connections = self.int_param("faults", 1 << 30)
        self.gone_at = self.int_param("gone_at", -1)
        self.interrupt_at = self.int_param("interrupt_at", -1)
        self.interrupts_on_close = self.int_param("interrupts_on_close", 0)
        self.connections = 0
        self._connection_frames = 0
        self._closing = threading.Event()

    def open(self) -> None:
        if self._gone():
            raise SourceError("synthetic source: cannot open the device (unplugged)")
        super().open()
        self._closing.clear()
        self.connections += 1
        self._connection_frames = 0

    def _read_rgb(self) -> tuple[np.ndarray, float] | None:
        if self._gone():
            raise SourceError("synthetic source: device lost (unplugged)")
        faulty, n = self.connections <= self.faulty_connections, self._connection_frames
        if faulty and 0 <= self.fail_at <= n:
            raise SourceError("synthetic source: device lost (injected fault)")
        if faulty and 0 <= self.stall_at <= n:
            self._closing.wait(min(self.stall_s, self.stall_timeout))  # the stall is the fault; close ends it
            if self.stall_s >= self.stall_timeout:
                raise SourceStalled(
                    f"synthetic source: no frame for {self.stall_timeout:g} s (injected stall)"
                )
        self._connection_frames += 1
        if self._count == self.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)
        return super()._read_rgb()

    def close(self) -> None:
        self._closing.set()
        super().close()
        for _ in range(self.interrupts_on_close):
            os.kill(os.getpid(), signal.SIGINT)

    def _gone(self) -> bool:
        return 0 <= self.gone_at <= self._count


if (PREFIX, FaultySource) not in sources.KINDS:
    sources.KINDS.insert(0, (PREFIX, FaultySource))
