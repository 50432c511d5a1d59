"""Who may use the server: the access token on every request and WebSocket, the host check on a
tokenless loopback server, and the headers every answer carries.

With a token, a request carries it as `?token=` (the first page load: the answer sets a cookie
and sends the browser on to the same page without it, so it leaves the address bar), as the
cookie, or as `Authorization: Bearer`; it is compared in constant time. Without one (127.0.0.1
only) the Host header must name the loopback address, and a WebSocket or an upload must come
from the page itself (its Origin), so neither a rebound DNS name nor another site's page in
the same browser can reach the video.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from polyp_rt.web.config import LOOPBACK_NAMES, MIN_TOKEN_CHARS, TOKEN_ENV, Address, AddressError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",  # the token never travels on in a Referer
    "cache-control": "no-store",
}
TOKEN_CHARS = re.compile(rf"[A-Za-z0-9._~-]{{{MIN_TOKEN_CHARS},}}")  # safe in a URL and a cookie as is
NEEDS_TOKEN = (
    "this polyp-rt server needs its access token: open the URL it printed when it started (...?token=...)"
)


@dataclass(frozen=True)
class Access:
    """The server's token (None: loopback without one) and where it listens."""

    address: Address
    token: str | None
    generated: bool = False  # made here: shown in the printed URL
    sock: socket.socket | None = field(default=None, compare=False)  # where it listens, once bound

    @classmethod
    def settle(cls, address: Address, token: str | None) -> Access:
        """The token given (`--token`, else $POLYP_RT_TOKEN), or one generated where the address needs one."""
        token = token or os.environ.get(TOKEN_ENV) or None
        if token is not None:
            if not TOKEN_CHARS.fullmatch(token):
                raise AddressError(
                    f"--token: use at least {MIN_TOKEN_CHARS} characters of A-Z, a-z, 0-9 and ._~- "
                    "(or leave it out and one is generated)"
                )
            return cls(address, token)
        if address.loopback:
            return cls(address, None)
        return cls(address, secrets.token_urlsafe(24), generated=True)

    @property
    def cookie(self) -> str:
        return f"polyp_rt_token_{self.address.port}"  # one per port: two servers on a host do not clash

    def url(self, path: str = "/") -> str:
        """The URL to open: with the token where it was generated, with a placeholder where it was given."""
        url = self.address.url(path)
        if self.token is None:
            return url
        return f"{url}?token={self.token if self.generated else '<your --token>'}"

    def accepts(self, given: str | None) -> bool:
        return (
            self.token is not None
            and given is not None
            and hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self.token.encode())
        )


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


class Guard:
    """ASGI middleware in front of every route: refuses what `Access` does not allow (401 without
    the token, 403 for a foreign host or origin; a WebSocket is closed before it opens, which the
    server answers with 403) and adds SECURITY_HEADERS to every answer."""

    def __init__(self, app: App, access: Access) -> None:
        self.app, self.access = app, access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan
            return
        headers = _headers(scope)
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        status, problem = self._refusal(scope, headers, query)
        if problem:
            await self._refuse(scope, receive, send, status, problem)
        elif scope["type"] == "http" and "token" in query and scope["method"] == "GET":
            await self._set_cookie(scope, send, query)
        else:
            await self.app(scope, receive, self._with_headers(send))

    def _refusal(self, scope: Scope, headers: dict[str, str], query: dict[str, str]) -> tuple[int, str]:
        if self.access.token is not None:
            bearer = headers.get("authorization", "")
            given = (
                query.get("token")
                or (bearer[7:] if bearer[:7].lower() == "bearer " else None)
                or _cookie(headers.get("cookie", ""), self.access.cookie)
            )
            return (0, "") if self.access.accepts(given) else (401, NEEDS_TOKEN)
        host = headers.get("host", "")
        if host not in self._loopback_hosts():
            return 403, f"host {host!r} is not served here: open {self.access.address.url()}"
        origin = headers.get("origin")
        crossing = scope["type"] == "websocket" or scope.get("method") not in ("GET", "HEAD")
        if crossing and origin is not None and origin != f"http://{host}":
            return 403, f"requests from {origin!r} are not served here"
        return 0, ""

    def _loopback_hosts(self) -> set[str]:
        port = self.access.address.port
        names = {Address(name, port).url("").removeprefix("http://") for name in LOOPBACK_NAMES}
        if port == 80:  # a browser leaves the default port out of Host
            names |= {name.rpartition(":")[0] for name in names}
        return names

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, text: str) -> None:
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": "refused"})
            return
        extra = [(b"www-authenticate", b"Bearer")] if status == 401 else []
        await self._with_headers(send)(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), *extra],
            }
        )
        await send({"type": "http.response.body", "body": (text + "\n").encode()})

    async def _set_cookie(self, scope: Scope, send: Send, query: dict[str, str]) -> None:
        """The token came in the URL: keep it in a cookie and go on to the same page without it."""
        rest = urlencode({k: v for k, v in query.items() if k != "token"})
        location = scope.get("path", "/") + (f"?{rest}" if rest else "")
        cookie = f"{self.access.cookie}={query['token']}; Path=/; HttpOnly; SameSite=Strict"
        await self._with_headers(send)(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [(b"location", location.encode()), (b"set-cookie", cookie.encode())],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    def _with_headers(send: Send) -> Send:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [
                    (k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k.encode() not in present
                ]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        return sending
