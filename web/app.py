"""The ASGI app: the pages (Jinja2 templates, autoescaped), their script and style, the live
WebSocket and the upload endpoint, all behind `Guard` (web/access.py).

Nothing a request names reaches the filesystem: the pages and static files are read from the
package once, at start, into a fixed table; uploads are stored under names of the server's.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from polyp_rt.core.files import to_json
from polyp_rt.core.pages import page_templates
from polyp_rt.web.access import Access, App, Guard
from polyp_rt.web.feed import IN_FLIGHT, LiveFeed
from polyp_rt.web.uploads import KINDS, UploadError, Uploads

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.websockets import WebSocket

    from polyp_rt.web.analyse import Analyser

log = logging.getLogger(__name__)

STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
MAX_PONGS = 8  # clock-sync answers a viewer may have waiting


@dataclass
class Views:
    """What the server shows: the live view (a run's feed) or the upload page (an analyser)."""

    access: Access
    title: str
    facts: dict[str, str] = field(default_factory=dict)  # shown on the page: source, model, limits
    feed: LiveFeed | None = None
    analyser: Analyser | None = None
    uploads: Uploads | None = None
    on_start: Callable[[], None] | None = None  # called on the server's loop once it runs


def static_files() -> dict[str, tuple[bytes, str]]:
    folder = resources.files("polyp_rt.web") / "static"
    table = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if suffix in STATIC_TYPES:
            table[entry.name] = (entry.read_bytes(), STATIC_TYPES[suffix])
    return table


def render(template: str, **values: Any) -> str:
    return page_templates("polyp_rt.web").get_template(template).render(**values)


def build_app(views: Views) -> App:
    """The Starlette app for `views`, wrapped in the access guard."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse
    from starlette.routing import Route, WebSocketRoute

    page = render(
        "live.html" if views.feed is not None else "upload.html",
        title=views.title,
        facts=views.facts,
        max_upload_bytes=views.uploads.max_bytes if views.uploads else 0,
        kinds=KINDS,
    )
    static = static_files()

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    async def static_file(request: Request) -> Response:
        found = static.get(request.path_params["name"])  # a table lookup: no path is opened
        if found is None:
            return PlainTextResponse("not found\n", 404)
        return PlainTextResponse(found[0], media_type=found[1])

    async def analyse(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        assert views.uploads is not None and views.analyser is not None
        try:
            async with views.uploads.receive(request.headers, request.stream()) as received:
                result = await run_in_threadpool(views.analyser.analyse, received)
        except UploadError as exc:
            return JSONResponse({"error": str(exc)}, exc.status)
        return PlainTextResponse(to_json(result), media_type="application/json")

    async def live(websocket: WebSocket) -> None:
        assert views.feed is not None
        await serve_viewer(websocket, views.feed)

    routes: list[Any] = [Route("/", index), Route("/static/{name}", static_file)]
    if views.feed is not None:
        routes.append(WebSocketRoute("/live", live))
    if views.analyser is not None:
        routes.append(Route("/analyse", analyse, methods=["POST"]))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if views.feed is not None:
            views.feed.attach(asyncio.get_running_loop())
        if views.on_start is not None:
            views.on_start()
        yield

    return Guard(Starlette(routes=routes, lifespan=lifespan), views.access)


@dataclass
class Viewer:
    """One browser's state: frames it may still be sent, clock-sync pings to answer."""

    credits: int = IN_FLIGHT
    seq: int = 0  # the last frame it was sent
    pongs: list[dict[str, Any]] = field(default_factory=list)
    gone: bool = False


async def serve_viewer(websocket: WebSocket, feed: LiveFeed) -> None:
    """Send one viewer the newest frame whenever it has room for one, until it leaves or the run ends."""
    await websocket.accept()
    feed.joined()
    wake = feed.broadcast.subscribe()
    viewer = Viewer()
    reader = asyncio.create_task(read_viewer(websocket, viewer, wake))
    try:
        while not viewer.gone:
            await wake.wait()
            wake.clear()
            for pong in viewer.pongs:
                await websocket.send_text(json.dumps(pong))
            viewer.pongs.clear()
            broadcast = feed.broadcast
            if broadcast.ended:
                await websocket.send_text(json.dumps({"type": "end"}))
                await websocket.close(1000)
                return
            if viewer.credits > 0 and broadcast.seq > viewer.seq:
                viewer.credits -= 1
                viewer.seq = broadcast.seq
                await websocket.send_bytes(broadcast.message)
    except Exception as exc:  # the browser went away while a frame was on its way
        log.debug("a viewer left: %s", exc)
    finally:
        feed.broadcast.unsubscribe(wake)
        feed.left()
        reader.cancel()


async def read_viewer(websocket: WebSocket, viewer: Viewer, wake: asyncio.Event) -> None:
    """A viewer's messages: `ack` (a frame drawn or dropped: room for another), `ping` (clock sync)."""
    import time

    try:
        while True:
            message = json.loads(await websocket.receive_text())
            if message.get("type") == "ack":
                viewer.credits = min(IN_FLIGHT, viewer.credits + 1)
            elif message.get("type") == "ping" and len(viewer.pongs) < MAX_PONGS:
                server_ms = time.monotonic_ns() / 1e6  # the clock of the frames' capture times
                viewer.pongs.append({"type": "pong", "client": float(message["client"]), "server": server_ms})
            wake.set()
    except Exception:  # closed, or a message that is not ours: the viewer is done
        viewer.gone = True
        wake.set()
