"""The browser views' figures for docs/BENCHMARKS.md (all on loopback, on this machine).

    python scripts/measure_web.py [--seconds 20] [--rounds 2] [--parts pipeline,g2g,upload,transport]

pipeline   `polyp-rt --source synthetic:640x480@30 --serve ...` with 0 viewers, 4 viewers, and 4
           viewers plus one that never reads, in turns (`--rounds`), each `--seconds` long: the
           pipeline's fps and e2e p50/p99 from its --stats-json, and what each viewer received.
           The viewers are WebSocket clients that acknowledge each frame as the page does.
g2g        one headless Chromium on the live page: the page's own glass-to-glass samples.
upload     the upload page answering a 640x480 PNG, 30 times: the client's round trip.
model      the bundled model alone, to tell how loaded the machine is.
screenshot docs/web_live.png (asked for by name only).
transport  the choice of WebSocket with acknowledgements over MJPEG (multipart push): a viewer
           that takes 200 ms per frame, fed 30 fps, on each; how old the frames it gets are.
Prints one JSON object; writes it to --out as well.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import io
import json
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))


def pct(values, qs=(50, 90, 99)) -> dict[str, float]:
    if not len(values):
        return {}
    return {f"p{q}": round(float(np.percentile(values, q)), 2) for q in qs}


class Viewer(threading.Thread):
    """A WebSocket viewer acknowledging each frame (`delay_s` of work per frame), or never reading."""

    def __init__(self, url: str, stalled: bool = False, delay_s: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.url, self.stalled, self.delay_s = url, stalled, delay_s
        self.frames = 0
        self.ages_ms: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        from websockets.sync.client import connect

        try:
            with connect(self.url, max_size=None, open_timeout=30) as ws:
                if self.stalled:
                    self.done.wait()
                    return
                while not self.done.is_set():
                    message = ws.recv(timeout=120)
                    if isinstance(message, str):
                        if json.loads(message).get("type") == "end":
                            return
                        continue
                    (n,) = struct.unpack(">I", message[:4])
                    header = json.loads(message[4 : 4 + n])
                    self.ages_ms.append(time.monotonic_ns() / 1e6 - header["t_capture_ms"])
                    self.frames += 1
                    if self.delay_s:
                        time.sleep(self.delay_s)
                    ws.send('{"type":"ack"}')
        except Exception:
            pass


def live_run(seconds: float, stats: Path, extra: list[str] = ()) -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable,
        "-m",
        "polyp_rt.cli.main",
        "--source",
        "synthetic:640x480@30",
        "--headless",
        "--serve",
        "127.0.0.1:0",
        "--max-frames",
        str(round(seconds * 30)),
        "--stats-json",
        str(stats),
        *extra,
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("live view:"):
            url = re.search(r"(http://\S+)", line).group(1)  # type: ignore[union-attr]
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, url
    raise SystemExit("polyp-rt did not start its live view")


def pipeline(seconds: float, rounds: int) -> dict:
    rows: dict[str, list[dict]] = {"0 viewers": [], "4 viewers": [], "4 viewers + 1 stalled": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for name, (n, stalled) in zip(rows, [(0, 0), (4, 0), (4, 1)], strict=True):
                stats = Path(tmp) / f"{r}-{n}-{stalled}.json"
                proc, url = live_run(seconds, stats)
                ws = url.replace("http://", "ws://") + "live"
                viewers = [Viewer(ws) for _ in range(n)] + [Viewer(ws, stalled=True) for _ in range(stalled)]
                for v in viewers:
                    v.start()
                proc.wait(timeout=seconds * 20 + 300)
                for v in viewers:
                    v.done.set()
                doc = json.loads(stats.read_text())
                rows[name].append(
                    {
                        "fps": round(doc["fps"], 2),
                        "e2e_p50": round(doc["e2e_ms"]["p50"], 1),
                        "e2e_p99": round(doc["e2e_ms"]["p99"], 1),
                        "dropped": doc["dropped_total"],
                        "viewer_fps": [round(v.frames / doc["seconds"], 2) for v in viewers if not v.stalled],
                        "encode_ms_p50": doc["live_view"]["encode_ms"]["p50"],
                        "load": round(os.getloadavg()[0], 1),
                    }
                )
                print(name, rows[name][-1], file=sys.stderr, flush=True)
    return rows


def g2g(seconds: float) -> dict:
    from chromium_cdp import Chromium

    with tempfile.TemporaryDirectory() as tmp, Chromium() as browser:
        proc, url = live_run(seconds + 15, Path(tmp) / "stats.json")
        browser.goto(url)
        browser.wait_for("window.polypView && polypView.shown > 30", 120)
        browser.evaluate("polypView.g2g.length = 0")
        time.sleep(seconds)
        samples = browser.evaluate("polypView.g2g.slice()")
        figures = browser.evaluate(
            "({rtt: polypView.rttMs, shown: polypView.shown, skipped: polypView.skipped})"
        )
        proc.wait(timeout=seconds * 20 + 300)
        doc = json.loads((Path(tmp) / "stats.json").read_text())
    return {
        "samples": len(samples),
        "g2g_ms": pct(samples),
        "clock_rtt_ms": round(figures["rtt"], 3),
        "pipeline_e2e_ms": {k: round(doc["e2e_ms"][k], 1) for k in ("p50", "p99")},
        "load": round(os.getloadavg()[0], 1),
    }


def upload(times: int) -> dict:
    import cv2

    from polyp_rt.engines.registry import open_engine
    from polyp_rt.realtime.config import DEMO_MODEL_INT8
    from polyp_rt.web.config import ServeConfig
    from polyp_rt.web.server import start_upload_page

    image = np.random.default_rng(3).integers(60, 100, (480, 640, 3), dtype=np.uint8)
    cv2.circle(image, (320, 240), 80, (200, 170, 225), -1)
    png = cv2.imencode(".png", image)[1].tobytes()
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        + png
        + b"\r\n--b--\r\n"
    )
    with ExitStack() as stack:
        engine = stack.enter_context(open_engine(DEMO_MODEL_INT8, device="cpu"))
        server = start_upload_page(ServeConfig(listen="127.0.0.1:0"), engine, DEMO_MODEL_INT8, stack)
        port = server.access.address.port
        round_trips, server_ms = [], []
        for i in range(times + 3):
            started = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request(
                "POST", "/analyse", body=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
            )
            answer = json.loads(conn.getresponse().read())
            conn.close()
            if i >= 3:  # the first answers warm the runtime up
                round_trips.append((time.perf_counter() - started) * 1e3)
                server_ms.append(answer["ms"])
    return {
        "round_trip_ms": pct(round_trips),
        "server_ms": pct(server_ms),
        "load": round(os.getloadavg()[0], 1),
    }


def transport(seconds: float) -> dict:
    """The same 30 fps feed to a 200 ms-per-frame viewer over each transport: the age of what it gets."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import StreamingResponse
    from starlette.routing import Route, WebSocketRoute

    from polyp_rt.realtime.frame import Frame, Stamp, now_ns
    from polyp_rt.web.app import serve_viewer
    from polyp_rt.web.feed import LiveFeed

    feed = LiveFeed()
    ready = threading.Event()
    picture = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)

    async def mjpeg(request):  # multipart push: every new frame written as fast as the socket takes it
        async def parts():
            seq = 0
            wake = feed.broadcast.subscribe()
            while not feed.broadcast.ended:
                await wake.wait()
                wake.clear()
                if feed.broadcast.seq > seq:
                    seq = feed.broadcast.seq
                    message = feed.broadcast.message
                    (n,) = struct.unpack(">I", message[:4])
                    t = json.loads(message[4 : 4 + n])["t_capture_ms"]
                    yield (
                        (f"--f\r\nContent-Type: image/jpeg\r\nX-Capture-Ms: {t}\r\n\r\n").encode()
                        + message[4 + n :]
                        + b"\r\n"
                    )

        return StreamingResponse(parts(), media_type="multipart/x-mixed-replace; boundary=f")

    @asynccontextmanager
    async def lifespan(app):
        feed.attach(asyncio.get_running_loop())
        ready.set()
        yield

    app = Starlette(
        routes=[WebSocketRoute("/live", lambda ws: serve_viewer(ws, feed)), Route("/mjpeg", mjpeg)],
        lifespan=lifespan,
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_config=None, log_level="warning", ws="websockets-sansio", ws_per_message_deflate=False
        )
    )
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    ready.wait(30)
    feed.viewers = 1  # the feed encodes only while someone watches
    stop = threading.Event()

    def produce() -> None:
        index = 0
        while not stop.is_set():
            frame = Frame(index, index / 30, now_ns(), picture)
            frame.overlay = picture
            frame.stamps[Stamp.OVERLAID] = now_ns()
            feed.offer(frame)
            index += 1
            time.sleep(1 / 30)

    threading.Thread(target=produce, daemon=True).start()
    ws_viewer = Viewer(f"ws://127.0.0.1:{port}/live", delay_s=0.2)
    ws_viewer.start()
    mjpeg_ages: list[float] = []

    def read_mjpeg() -> None:
        conn = socket.create_connection(("127.0.0.1", port))
        conn.sendall(b"GET /mjpeg HTTP/1.1\r\nHost: x\r\n\r\n")
        stream = conn.makefile("rb")
        while not stop.is_set():
            line = stream.readline()
            if line.startswith(b"X-Capture-Ms:"):
                mjpeg_ages.append(time.monotonic_ns() / 1e6 - float(line.split(b":")[1]))
                time.sleep(0.2)  # the viewer's 200 ms per frame
        conn.close()

    threading.Thread(target=read_mjpeg, daemon=True).start()
    time.sleep(seconds)
    stop.set()
    ws_viewer.done.set()
    feed.end()
    server.should_exit = True
    half = lambda xs: xs[len(xs) // 2 :]  # noqa: E731 (the second half: after any queue filled up)
    return {
        "websocket_ack_age_ms": pct(half(ws_viewer.ages_ms)),
        "mjpeg_push_age_ms": pct(half(mjpeg_ages)),
        "websocket_frames": ws_viewer.frames,
        "mjpeg_frames": len(mjpeg_ages),
        "seconds": seconds,
    }


def screenshot(path: Path) -> dict:
    """docs/web_live.png: the live view of the demo clip in headless Chromium, with a polyp found."""
    from chromium_cdp import Chromium

    with tempfile.TemporaryDirectory() as tmp, Chromium(width=1200, height=800) as browser:
        stats = Path(tmp) / "stats.json"
        command = [
            sys.executable, "-m", "polyp_rt.cli.main", "--source", str(ROOT / "samples" / "demo.mp4"), "--realtime",
            "--headless", "--serve", "127.0.0.1:0", "--stats-json", str(stats),
        ]  # fmt: skip
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        url = next(re.search(r"(http://\S+)", x).group(1) for x in proc.stdout if x.startswith("live view:"))  # type: ignore[union-attr]
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        browser.goto(url)
        browser.wait_for("window.polypView && polypView.shown > 60 && polypView.last.polyp", 120)
        png = browser.screenshot()
        proc.terminate()
        proc.wait(timeout=60)
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    image = image.resize((960, round(image.height * 960 / image.width)), Image.Resampling.LANCZOS)
    small = image.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)  # a small PNG for the docs
    return {"path": str(path), "bytes": path.stat().st_size, "size": [image.height, image.width]}


def model_now(times: int = 30) -> dict:
    """The bundled INT8 model alone, now: how loaded the machine is (12.7 ms p50 when idle)."""
    from polyp_rt.engines.registry import open_engine
    from polyp_rt.engines.timing import time_engine
    from polyp_rt.realtime.config import DEMO_MODEL_INT8

    with open_engine(DEMO_MODEL_INT8, device="cpu") as engine:
        batch = np.zeros((1, 3, engine.contract.height, engine.contract.width), np.float32)
        took, _ = time_engine(engine, batch, times, warmup=5)
    return {"model_ms": pct(took), "load": round(os.getloadavg()[0], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--parts", default="pipeline,g2g,upload,transport")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "web_bench.json")
    args = parser.parse_args()
    results: dict = {"cpus": os.cpu_count(), "load_at_start": round(os.getloadavg()[0], 1)}
    for part in args.parts.split(","):
        if part == "pipeline":
            results[part] = pipeline(args.seconds, args.rounds)
        elif part == "g2g":
            results[part] = g2g(args.seconds)
        elif part == "upload":
            results[part] = upload(30)
        elif part == "transport":
            results[part] = transport(args.seconds)
        elif part == "model":
            results[part] = model_now()
        elif part == "screenshot":
            results[part] = screenshot(ROOT / "docs" / "web_live.png")
        print(part, json.dumps(results[part]), file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
