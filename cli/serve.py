"""`polyp-rt serve`: the upload page, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import threading
from contextlib import ExitStack
from types import FrameType

from polyp_rt.cli.report import console
from polyp_rt.core.errors import PolypRtError
from polyp_rt.core.signals import EXIT_CODES, SignalWatch
from polyp_rt.realtime.config import model_to_run
from polyp_rt.realtime.threads import thread_plan
from polyp_rt.web.config import ServeConfig

POLL_S = 0.5  # how often the wait looks whether the server thread still runs


class StopServing(SignalWatch):
    """Ctrl-C or SIGTERM: the server stops (and exits 130 or 143, as every command does)."""

    def __init__(self) -> None:
        super().__init__()
        self.stop = threading.Event()

    def handle(self, signum: int, frame: FrameType | None) -> None:
        super().handle(signum, frame)
        self.stop.set()


def serve_command(config: ServeConfig) -> int:
    from polyp_rt.engines.registry import open_engine
    from polyp_rt.web.server import require_web, start_upload_page

    require_web()
    model = model_to_run(config.model, config.backend, config.device)
    if not model.is_file():
        raise PolypRtError(f"{model}: model not found; pass --model with a .onnx, .engine or checkpoint .pt")
    with StopServing() as signals, ExitStack() as stack:
        engine = stack.enter_context(
            open_engine(model, config.backend, config.device, threads=thread_plan(config.threads).runtime)
        )
        server = start_upload_page(config, engine, model, stack)
        console.print(
            f"upload page: [bold]{server.url}[/bold]  ({model.name} on {engine.label}; Ctrl-C stops)",
            highlight=False,
            soft_wrap=True,
        )
        while not signals.stop.wait(POLL_S):
            if not server.alive():
                raise PolypRtError("the web server stopped unexpectedly (see the log above)")
    return EXIT_CODES[signals.reason] if signals.reason else 0
