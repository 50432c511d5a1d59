"""Headless Chromium driven over the DevTools protocol: open a page, run script in it, set a file
input, take a screenshot. The browser views' tests (tests/web) and scripts/measure_web.py use it.

Debian's chromium (/usr/bin/chromium) with the flags this machine needs: no sandbox as root, no
GPU, and nothing that reaches for the network in the background (its connections would be
refused). The protocol runs over a WebSocket (the `websockets` package, which `polyp-rt[web]`
brings).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--mute-audio",
)
START_TIMEOUT_S = 60.0


def chromium() -> str | None:
    """The Chromium binary here, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


class BrowserError(RuntimeError):
    pass


class Chromium:
    """One headless Chromium with one page; a context manager (the browser and its profile go at exit)."""

    def __init__(self, width: int = 1280, height: int = 900, binary: str | None = None) -> None:
        from websockets.sync.client import connect

        binary = binary or chromium()
        if binary is None:
            raise BrowserError("no Chromium here (apt-get install chromium)")
        self.profile = Path(tempfile.mkdtemp(prefix="polyp-rt-chromium-"))
        command = [
            binary,
            *FLAGS,
            f"--user-data-dir={self.profile}",
            "--remote-debugging-port=0",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port = self._devtools_port()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
                pages = [t for t in json.load(answer) if t.get("type") == "page"]
            if not pages:
                raise BrowserError("Chromium opened no page")
            self.ws = connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=20).__enter__()
        except BaseException:
            self.close()
            raise
        self._id = 0
        self.events: list[dict[str, Any]] = []
        self.call("Page.enable")
        self.call("Runtime.enable")

    def _devtools_port(self) -> int:
        """The port Chromium writes into its profile once DevTools listens (waits on the process)."""
        marker = self.profile / "DevToolsActivePort"
        waited = 0.0
        while not (marker.is_file() and marker.read_text().strip()):
            try:
                code = self.proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                waited += 0.05
                if waited > START_TIMEOUT_S:
                    raise BrowserError(
                        f"Chromium did not open DevTools within {START_TIMEOUT_S:.0f} s"
                    ) from None
                continue
            raise BrowserError(f"Chromium exited (code {code}) before DevTools opened")
        return int(marker.read_text().split()[0])

    def call(self, method: str, timeout: float = 60.0, **params: Any) -> dict[str, Any]:
        """One protocol command; its result (BrowserError for a protocol error)."""
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=timeout))
            if message.get("id") == self._id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error'].get('message')}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def goto(self, url: str, timeout: float = 60.0) -> None:
        """Open `url` and wait for its load event."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        if any(e.get("method") == "Page.loadEventFired" for e in self.events):
            return
        while True:
            message = json.loads(self.ws.recv(timeout=timeout))
            if message.get("method") == "Page.loadEventFired":
                return
            self.events.append(message)

    def evaluate(self, expression: str, timeout: float = 60.0) -> Any:
        """The value of a script expression in the page (a promise is awaited)."""
        result = self.call(
            "Runtime.evaluate", timeout=timeout, expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def wait_for(self, condition: str, timeout_s: float) -> bool:
        """Whether `condition` (a script expression) became true within `timeout_s`; the waiting is
        done by the page itself, which looks again every 20 ms."""
        ms = int(timeout_s * 1000)
        script = (
            "new Promise((done) => { const start = performance.now(); (function look() {"
            f" let ok = false; try {{ ok = Boolean({condition}); }} catch (e) {{}}"
            f" if (ok) done(true); else if (performance.now() - start > {ms}) done(false);"
            " else setTimeout(look, 20); })(); })"
        )
        return bool(self.evaluate(script, timeout=timeout_s + 30))

    def screenshot(self) -> bytes:
        """The page as a PNG."""
        import base64

        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    def set_files(self, selector: str, *paths: Path) -> None:
        """Choose `paths` in the file input `selector`, as a user would."""
        root = self.call("DOM.getDocument")["root"]["nodeId"]
        node = self.call("DOM.querySelector", nodeId=root, selector=selector)["nodeId"]
        if not node:
            raise BrowserError(f"no element {selector!r} on the page")
        self.call("DOM.setFileInputFiles", nodeId=node, files=[str(p) for p in paths])

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
