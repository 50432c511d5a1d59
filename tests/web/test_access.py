"""Who may connect: addresses, the token on every route and WebSocket, the loopback host check."""

from __future__ import annotations

import http.client
import json
from contextlib import ExitStack
from urllib.parse import urlsplit

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from polyp_rt.cli.main import main
from polyp_rt.core.files import to_json
from polyp_rt.realtime.config import RunConfig
from polyp_rt.realtime.stats_file import stats_document
from polyp_rt.web.access import Access
from polyp_rt.web.config import Address, AddressError, parse_address
from polyp_rt.web.server import start_live_view

FORM = "multipart/form-data; boundary=x"
EMPTY_FORM = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n\r\n--x--\r\n'


def fetch(url: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None):
    """(status, headers, body) of one request, redirects not followed."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path or "/", body=body, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        conn.close()


def ws_status(url: str, headers: dict[str, str] | None = None, origin: str | None = None) -> int:
    """The HTTP status a WebSocket handshake gets: 101 where it opens."""
    ws_url = url.replace("http://", "ws://", 1)
    try:
        with connect(ws_url, additional_headers=headers or {}, origin=origin, open_timeout=20):  # type: ignore[arg-type]
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


@pytest.mark.parametrize(
    "text, host, port",
    [
        ("127.0.0.1:8080", "127.0.0.1", 8080),
        ("[::1]:9000", "::1", 9000),
        ("0.0.0.0:0", "0.0.0.0", 0),
        ("localhost:80", "localhost", 80),
        ("[0:0::1]:8080", "::1", 8080),  # one spelling of an address
    ],
)
def test_addresses_parse(text, host, port):
    assert parse_address(text, "--serve") == Address(host, port)


@pytest.mark.parametrize(
    "text", ["8080", "127.0.0.1", "127.0.0.1:http", ":8080", "127.0.0.1:70000", "a b:80", "0177.0.0.1:80"]
)
def test_a_bad_address_is_one_line_naming_the_flag(text):
    with pytest.raises(AddressError, match=r"^--serve "):
        parse_address(text, "--serve")


@pytest.mark.parametrize(
    "host, needs_token",
    [
        ("127.0.0.1", False),
        ("::1", False),
        ("localhost", False),
        ("127.0.0.2", True),
        ("0.0.0.0", True),
        ("10.1.2.3", True),
    ],
)
def test_only_127_0_0_1_goes_without_a_token(host, needs_token, monkeypatch):
    monkeypatch.delenv("POLYP_RT_TOKEN", raising=False)
    access = Access.settle(Address(host, 8080), None)
    assert (access.token is not None) == needs_token
    if needs_token:
        assert access.generated and len(access.token or "") >= 32
        assert access.url().endswith(f"/?token={access.token}")


def test_a_given_token_is_used_and_not_printed(monkeypatch):
    monkeypatch.delenv("POLYP_RT_TOKEN", raising=False)
    access = Access.settle(Address("0.0.0.0", 8080), "a-token-of-my-own-1234")
    assert access.token == "a-token-of-my-own-1234" and not access.generated
    assert "a-token-of-my-own" not in access.url()
    monkeypatch.setenv("POLYP_RT_TOKEN", "from-the-environment-5678")
    assert Access.settle(Address("127.0.0.1", 8080), None).token == "from-the-environment-5678"
    assert not Access.settle(Address("127.0.0.2", 1), "x" * 16).accepts("x" * 15 + "y")


@pytest.mark.parametrize("token", ["short", "has space in it....", "semi;colon;cookie;breaker"])
def test_a_weak_or_unsafe_token_is_refused(token):
    with pytest.raises(AddressError, match="--token"):
        Access.settle(Address("0.0.0.0", 8080), token)


def test_a_taken_port_is_one_line_exit_2(upload_server, capsys):
    served = upload_server()
    port = urlsplit(served.base).port
    assert main(["serve", "--listen", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"error: --listen 127.0.0.1:{port}: cannot listen there: the port is in use (another server?); choose another port"
    )


def every_route(base: str, headers: dict[str, str]) -> dict[str, int]:
    """The status of each route of both views (the upload page's and the live view's)."""
    return {
        "page": fetch(base + "/", headers=headers)[0],
        "script": fetch(base + "/static/live.js", headers=headers)[0],
        "style": fetch(base + "/static/style.css", headers=headers)[0],
        "missing": fetch(base + "/no/such/page", headers=headers)[0],
        "upload": fetch(base + "/analyse", "POST", {**headers, "Content-Type": FORM}, EMPTY_FORM)[0],
    }


def test_without_the_token_every_route_is_refused_and_with_it_allowed(upload_server, monkeypatch):
    """Bound to 127.0.0.2 (an address other than 127.0.0.1, on loopback: nothing leaves the machine)."""
    monkeypatch.delenv("POLYP_RT_TOKEN", raising=False)
    served = upload_server(listen="127.0.0.2:0")
    token = served.token
    assert token and served.url == f"{served.base}/?token={token}"
    assert set(every_route(served.base, {}).values()) == {401}
    assert set(every_route(served.base, {"Authorization": "Bearer wrong-token-0000000000"}).values()) == {401}
    cookie = "polyp_rt_token_" + str(urlsplit(served.base).port)
    assert set(every_route(served.base, {"Cookie": f"{cookie}={token[:-1]}"}).values()) == {401}
    allowed = every_route(served.base, {"Authorization": f"Bearer {token}"})
    assert allowed == {"page": 200, "script": 200, "style": 200, "missing": 404, "upload": 400}
    assert every_route(served.base, {"Cookie": f"{cookie}={token}"}) == allowed
    # the token in the URL: kept in a cookie, and the browser sent on without it in the address bar
    status, headers, _ = fetch(served.url)
    assert status == 303 and headers["location"] == "/"
    assert headers["set-cookie"].startswith(f"{cookie}={token};") and "HttpOnly" in headers["set-cookie"]
    assert "SameSite=Strict" in headers["set-cookie"]


def test_the_live_socket_needs_the_token_too(monkeypatch):
    monkeypatch.delenv("POLYP_RT_TOKEN", raising=False)
    with ExitStack() as stack:
        view = start_live_view("127.0.0.2:0", None, {}, stack)
        access = view.server.access
        base = access.address.url("/live")
        assert ws_status(base) == 403
        assert ws_status(base, {"Authorization": "Bearer not-the-token-000000"}) == 403
        assert ws_status(f"{base}?token={access.token}") == 101
        assert ws_status(base, {"Cookie": f"{access.cookie}={access.token}"}) == 101
        assert fetch(access.address.url("/"))[0] == 401
        view.sink.close()


def test_loopback_without_a_token_refuses_other_hosts_and_other_sites(monkeypatch):
    """No token on 127.0.0.1: a rebound DNS name (its Host) or another site's page (its Origin) is refused."""
    monkeypatch.delenv("POLYP_RT_TOKEN", raising=False)
    with ExitStack() as stack:
        view = start_live_view("127.0.0.1:0", None, {}, stack)
        base = view.server.access.address.url("")
        port = urlsplit(base).port
        assert view.server.access.token is None and view.url == base + "/"
        assert fetch(base + "/")[0] == 200
        assert fetch(base + "/", headers={"Host": f"localhost:{port}"})[0] == 200
        assert fetch(base + "/", headers={"Host": f"evil.example:{port}"})[0] == 403
        assert ws_status(base + "/live", origin=f"http://127.0.0.1:{port}") == 101
        assert ws_status(base + "/live", origin="https://evil.example") == 403
        view.sink.close()


def test_every_answer_carries_the_security_headers(upload_server):
    served = upload_server()
    _, headers, body = fetch(served.base + "/")
    assert "script-src" not in headers["content-security-policy"]  # default-src 'self': nothing inline
    assert headers["content-security-policy"].startswith("default-src 'self'")
    assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
    assert b'<script src="/static/upload.js"></script>' in body and b"<script>" not in body
    # no listing, and no path from the request reaches the disk
    for path in (
        "/static/",
        "/static/../config.py",
        "/static/%2e%2e%2fconfig.py",
        "/static/..%2F..%2Fpyproject.toml",
    ):
        assert fetch(served.base + path)[0] == 404, path


def test_the_stats_json_never_holds_the_token():
    config = RunConfig(source="synthetic:64x64@5", serve="0.0.0.0:8080", token="secret-token-abcdefgh")
    document = to_json(stats_document(config, {}))
    assert "secret-token-abcdefgh" not in document
    assert json.loads(document)["config"]["token"] == "***"


def test_a_token_without_serve_is_one_line(capsys):
    assert main(["--source", "synthetic:64x64@5", "--headless", "--token", "a-token-of-sixteen-plus"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --token is the access token of --serve: pass --serve HOST:PORT too, or leave it out"
    )
