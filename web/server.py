"""The server: its socket bound in the caller's thread (so a taken port is a one-line error before
anything else starts), uvicorn on a thread of its own, and the two ways the CLI starts it.

    start_live_view(...)    `polyp-rt --source ... --serve HOST:PORT`: the live view; its sink
                            goes into the pipeline like any other video sink
    start_upload_page(...)  `polyp-rt serve`: the upload page around an open engine
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

from polyp_rt.core.closing import Closing
from polyp_rt.core.errors import PolypRtError
from polyp_rt.engines.base import Engine
from polyp_rt.web.access import Access
from polyp_rt.web.app import Views, build_app
from polyp_rt.web.config import Address, AddressError, ServeConfig, parse_address
from polyp_rt.web.feed import LiveFeed, LiveSink

log = logging.getLogger(__name__)

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
WEB_PACKAGES = ("starlette", "uvicorn", "websockets", "python_multipart", "jinja2")


def require_web() -> None:
    """PolypRtError naming the `[web]` extra where one of its packages is missing."""
    import importlib.util

    missing = [name for name in WEB_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise PolypRtError(
            f'the browser views need {", ".join(missing)}, which come with pip install "polyp-rt[web]"'
        )


def open_socket(address: Address, flag: str) -> socket.socket:
    """A listening TCP socket on `address`; AddressError in one line if it cannot be had."""
    try:
        infos = socket.getaddrinfo(
            address.host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise AddressError(f"{flag} {address.host}: cannot resolve this host name ({exc.strerror})") from exc
    family, kind, proto, _, where = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(where)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        why = {
            errno.EADDRINUSE: "the port is in use (another server?); choose another port",
            errno.EADDRNOTAVAIL: "not an address of this machine",
            errno.EACCES: "not allowed (ports below 1024 need privileges); choose a port above 1024",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        raise AddressError(f"{flag} {address.host}:{address.port}: cannot listen there: {why}") from exc
    return sock


def bound(access: Access, flag: str) -> Access:
    """`access` with its socket bound (port 0: the port it was given)."""
    sock = open_socket(access.address, flag)
    return replace(access, address=access.address.with_port(sock.getsockname()[1]), sock=sock)


class WebServer(Closing):
    """uvicorn serving `views` on the socket `access` holds, on a thread of its own, while entered."""

    def __init__(self, access: Access, views: Views) -> None:
        assert access.sock is not None
        self.sock, self.views, self.access = access.sock, views, access
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._server: object = None

    @property
    def url(self) -> str:
        return self.access.url()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> WebServer:
        import uvicorn

        self.views.on_start = self._ready.set
        config = uvicorn.Config(
            build_app(self.views),
            log_config=None,  # the CLI's logging stays as it is
            log_level="warning",
            access_log=False,
            lifespan="on",
            ws="websockets-sansio",
            ws_max_size=64 * 1024,  # a viewer only sends acks and pings
            ws_per_message_deflate=False,  # JPEG does not deflate: it would cost CPU for nothing
            server_header=False,
            timeout_graceful_shutdown=3,
            limit_concurrency=64,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self.sock]}, name="polyp-rt web", daemon=True
        )
        self._thread.start()
        while not self._ready.wait(0.05):
            if not self._thread.is_alive() or server.should_exit:
                self.close()
                raise PolypRtError(
                    f"{self.access.address.url()}: the web server did not start (see the log above)"
                )
        return self

    def close(self) -> None:
        """Stop serving: open connections get `timeout_graceful_shutdown` to finish; the upload folder goes."""
        if self.views.analyser is not None:
            self.views.analyser.stop()
        if self.views.feed is not None:  # the run may have failed before its sink was closed
            self.views.feed.end()
        if self._server is not None:
            self._server.should_exit = True  # type: ignore[attr-defined]
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)
            if self._thread.is_alive():
                log.warning("the web server did not stop within %.0f s", STOP_TIMEOUT_S)
        self.sock.close()
        if self.views.uploads is not None:
            self.views.uploads.close()


@dataclass
class LiveView:
    server: WebServer
    sink: LiveSink

    @property
    def url(self) -> str:
        return self.server.url


def start_live_view(serve: str, token: str | None, facts: dict[str, str], stack: ExitStack) -> LiveView:
    """The live view on `serve` (HOST:PORT), stopped by `stack`; put `.sink` into the pipeline."""
    require_web()
    access = bound(Access.settle(parse_address(serve, "--serve"), token), "--serve")
    feed = LiveFeed()
    server = stack.enter_context(WebServer(access, Views(access, "polyp-rt live view", facts, feed=feed)))
    return LiveView(server, LiveSink(feed))


def start_upload_page(config: ServeConfig, engine: Engine, model: Path, stack: ExitStack) -> WebServer:
    """The upload page on `config.listen`, segmenting with `engine` (opened from `model`), stopped by `stack`."""
    from polyp_rt.web.analyse import Analyser
    from polyp_rt.web.uploads import Uploads

    require_web()
    access = bound(Access.settle(parse_address(config.listen, "--listen"), config.token), "--listen")
    uploads = Uploads(round(config.max_upload_mb * 1e6))
    facts = {
        "model": model.name,
        "engine": engine.label,
        "largest upload": f"{config.max_upload_mb:g} MB",
        "longest clip": f"{config.max_clip_seconds:g} s",
    }
    analyser = Analyser(engine, model, config)
    views = Views(access, "polyp-rt: segment an image or a clip", facts, analyser=analyser, uploads=uploads)
    return stack.enter_context(WebServer(access, views))
