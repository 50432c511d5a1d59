"""Ray, started on this machine or joined: the one place that calls `ray.init` and `ray.shutdown`.

Started here (no address), Ray runs in its single-machine mode: every server it starts listens on
127.0.0.1 only, and no dashboard starts. With an address it joins that cluster and leaves it
running (a cluster on 127.0.0.1, as the tests start one, is joined in the same single-machine
mode). An embedded Ray is shut down on every way out the driver has: its end, an error, Ctrl-C,
SIGTERM or SIGHUP (core/signals.py), even while Ray starts; a driver killed with SIGKILL leaves
Ray's two agents for about a minute (docs/BATCH.md). Ray's own token authentication, where the
cluster uses it, needs no code here: the `RAY_AUTH_MODE` / `RAY_AUTH_TOKEN_PATH` environment
reaches `ray.init`.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from polyp_rt.core.errors import PolypRtError
from polyp_rt.core.signals import SignalWatch

log = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "polyp-rt[batch]"'
# Ray's single-machine mode (its default on macOS and Windows): the node's address is 127.0.0.1, so
# its servers bind there. Read when ray is first imported.
SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
CONNECT_TIMEOUT_S = 5.0


def import_ray(local: bool = False) -> ModuleType:
    """The ray module; PolypRtError naming the extra to install where it is missing. `local`: for
    an embedded Ray, switch Ray to its single-machine mode first (if ray is not imported yet)."""
    if local:
        os.environ.setdefault(SINGLE_MACHINE_ENV, "0")
    try:
        import ray
    except ImportError:
        raise PolypRtError(
            f"polyp-rt batch needs Ray, which is not installed: {INSTALL_HINT} "
            "(or --in-process: the videos one after another in this process, without Ray)"
        ) from None
    return ray


@contextmanager
def ray_session(address: str | None, num_cpus: int | None = None) -> Iterator[ModuleType]:
    """Ray for the duration of a batch: a Ray already connected in this process is used as it is
    (and left running); else Ray is started on 127.0.0.1 (`address` None) or the cluster at
    `address` is joined, and shut down / left at the end."""
    host_port = _host_port(address)
    ray = import_ray(local=address is None or (host_port is not None and _loopback(host_port[0])))
    if ray.is_initialized():
        yield ray
        return
    if host_port is not None:
        _reachable(address or "", *host_port)
    try:
        start_ray(ray, address, num_cpus)  # Ctrl-C while Ray starts: what started is stopped
        yield ray
    finally:
        with SignalWatch():  # a signal while Ray stops is noted, not raised: it stops whole
            ray.shutdown()


def start_ray(ray: ModuleType, address: str | None, num_cpus: int | None = None) -> None:
    options: dict[str, Any] = {
        "log_to_driver": False,  # worker logs stay in Ray's session folder; errors come back as results
        "logging_level": logging.WARNING,
        "namespace": "polyp-rt",
    }
    # Ray (2.59+) says at every local start that it turned token authentication on: it is on.
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    if address is None:
        try:
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **options)
        except Exception as exc:
            raise PolypRtError(f"cannot start Ray on this machine: {_first_line(exc)}") from exc
        gcs = str(ray.get_runtime_context().gcs_address)
        if not _loopback(gcs):
            ray.shutdown()
            raise PolypRtError(
                f"Ray started on {gcs}, not on 127.0.0.1 (was ray imported before polyp-rt batch set "
                f"{SINGLE_MACHINE_ENV}=0?); nothing was run"
            )
        return
    try:
        ray.init(address=address, **options)
    except Exception as exc:
        raise PolypRtError(
            f"--ray-address {address}: cannot join the Ray cluster: {_first_line(exc)} (is it running? "
            "does RAY_AUTH_MODE / RAY_AUTH_TOKEN_PATH match the cluster's?)"
        ) from exc


def cluster_resources(ray: ModuleType) -> dict[str, float]:
    return {k: float(v) for k, v in ray.cluster_resources().items()}


def largest_node_cpus(ray: ModuleType) -> float | None:
    """The CPUs of the cluster's largest live node (a task must fit on one); None where Ray does
    not say."""
    try:
        cpus = [float(n.get("Resources", {}).get("CPU", 0.0)) for n in ray.nodes() if n.get("Alive")]
    except Exception:  # Ray Client or a Ray without it: the scheduler is left to tell
        return None
    return max(cpus) if cpus else None


def _host_port(address: str | None) -> tuple[str, int] | None:
    """(host, port) of HOST:PORT or ray://HOST:PORT; None for no address or `auto`."""
    if not address or address == "auto":
        return None
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise PolypRtError(f"--ray-address {address}: use auto, HOST:PORT or ray://HOST:PORT")
    return host.strip("[]"), int(port)


def _reachable(address: str, host: str, port: int) -> None:
    """A cluster that is not there is one line at once (Ray itself retries for minutes)."""
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise PolypRtError(
            f"--ray-address {address}: nothing answers at {host}:{port} ({exc.strerror or exc}); "
            "is the cluster's head running (ray start --head), and the port open to this machine?"
        ) from None


def _loopback(address: str) -> bool:
    """Whether a host, HOST:PORT or [IPv6]:PORT is this machine's loopback."""
    host = address
    if host.startswith("["):
        host = host[1 : host.index("]")]
    elif host.count(":") == 1:
        host = host.split(":")[0]
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
