"""Configuration of `polyp-rt serve` and the address rule both views share (light: no heavy imports).

Who may connect: the server listens on 127.0.0.1 unless told otherwise. On any other address
(another loopback address such as 127.0.0.2 included: "other than 127.0.0.1" is the rule, not
"reachable from elsewhere") every request needs the access token; on 127.0.0.1 (and ::1,
localhost) only where one is given.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

from polyp_rt.core.errors import PolypRtError
from polyp_rt.core.options import as_in, option
from polyp_rt.realtime.config import BUNDLED, OverlayConfig, RunConfig

DEFAULT_ADDRESS = "127.0.0.1:8080"
LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")  # served without a token unless one is given
TOKEN_ENV = "POLYP_RT_TOKEN"  # read where --token is not given: keeps the token out of `ps`
MIN_TOKEN_CHARS = 16
HOST_NAME = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
ADDRESS_HELP = "HOST:PORT, e.g. 127.0.0.1:8080; any address but 127.0.0.1 needs the access token"
TOKEN_HELP = (
    f"access token for the browser views (default: ${TOKEN_ENV}, else generated where one is needed "
    "and printed as part of the URL)"
)


class AddressError(PolypRtError):
    """A listening address that cannot be parsed or bound."""


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        """Served without a token unless one is given: 127.0.0.1, ::1 or localhost, nothing else."""
        return self.host in LOOPBACK_NAMES

    @property
    def ipv6(self) -> bool:
        return ":" in self.host

    def with_port(self, port: int) -> Address:
        return Address(self.host, port)

    def url(self, path: str = "/") -> str:
        host = f"[{self.host}]" if self.ipv6 else self.host
        return f"http://{host}:{self.port}{path}"


def parse_address(text: str, flag: str) -> Address:
    """'HOST:PORT' or '[v6]:PORT' (port 0: any free one); AddressError naming `flag` otherwise."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise AddressError(f"{flag} {text!r}: write HOST:PORT, e.g. 127.0.0.1:8080 (port 0..65535)")
    host = host.removeprefix("[").removesuffix("]")
    if not host:
        raise AddressError(f"{flag} {text!r}: name the host too, e.g. 127.0.0.1:{port_text}")
    try:
        host = str(ipaddress.ip_address(host))  # one spelling: 0:0::1 is ::1
    except ValueError:
        if not HOST_NAME.fullmatch(host) or host.replace(".", "").isdigit():  # 0177.0.0.1: octal to some
            raise AddressError(f"{flag} {text!r}: {host!r} is not an IP address or a host name") from None
    return Address(host, int(port_text))


@dataclass
class ServeConfig:
    listen: str = option(
        DEFAULT_ADDRESS, f"where the upload page listens: {ADDRESS_HELP}", metavar="HOST:PORT"
    )
    token: str | None = option(None, TOKEN_HELP)
    model: Path | None = option(None, f"checkpoint, ONNX or TensorRT engine {BUNDLED}", metavar="M")
    backend: str = as_in(RunConfig, "backend")
    device: str | None = as_in(RunConfig, "device")
    threads: int | None = as_in(RunConfig, "threads")
    threshold: float | None = as_in(RunConfig, "threshold")
    max_upload_mb: float = option(
        50.0,
        "largest upload accepted, in MB (an image and its mask, or a clip)",
        low=0,
        high=4096,
        low_open=True,
    )
    max_clip_seconds: float = option(
        30.0, "longest clip accepted, in seconds", low=0, high=3600, low_open=True
    )
    max_pixels: float = option(
        8.3,
        "largest image or clip frame accepted, in megapixels (8.3: 3840x2160)",
        low=0,
        high=100,
        low_open=True,
    )
    overlay: OverlayConfig = field(default_factory=OverlayConfig)
