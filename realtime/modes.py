"""The two ways a run can go, settled once from its configuration and its engine.

The display mode: what the window, the recording and every other video sink wait for.
- `synced`: each frame waits for its own mask; every mask is on the frame it was computed from,
  and the video is as late as the model (capture -> shown = the whole inference).
- `passthrough`: every captured frame goes to the sinks at once, drawn with the newest finished
  mask, placed as it is (not warped) onto the newer frame; the model takes the newest frame
  whenever it is free. The video never waits for the model; a mask is as late as the model.

The inference mode: how many requests the runtime keeps in flight.
- `latency`: one (the runtime's latency setting): each frame's mask as soon as possible.
- `throughput`: two (OpenVINO's throughput hint, ONNX Runtime's cores split between two
  concurrent runs), so decoding, inference and drawing overlap: the same masks, more frames a
  second, each frame later. For files played flat out, where only frames a second count.

`auto` picks by the source and the device, as measured on a 2-core CPU (docs/LIVE.md).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from polyp_rt.core.errors import PolypRtError
from polyp_rt.realtime.config import RunConfig

if TYPE_CHECKING:
    from polyp_rt.engines.base import Engine

log = logging.getLogger(__name__)
# the display a live source gets by default, by where the model runs (docs/LIVE.md):
# on the CPU measured (passthrough: video delay p99 a few ms against the whole inference for
# synced, at a small cost in Dice); on a GPU not yet measured, so today's behaviour stays
LIVE_DISPLAY = {"cpu": "passthrough", "cuda": "synced"}
THROUGHPUT_REQUESTS = 2


@dataclass(frozen=True)
class Modes:
    display: str = "synced"
    inference: str = "latency"
    requests: int = 1  # inference requests in flight

    @property
    def passthrough(self) -> bool:
        return self.display == "passthrough"

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    def describe(self) -> str:
        """For the closing table's title, e.g. `passthrough · latency`."""
        requests = f" ({self.requests} requests)" if self.requests > 1 else ""
        return f"{self.display} · {self.inference}{requests}"


def source_is_live(spec: str | None) -> bool:
    """Whether a --source string names a live source (a camera, a stream, a synthetic scene)."""
    from polyp_rt.realtime.sources import named_kind

    return bool(spec) and bool(getattr(named_kind(str(spec)), "live", False))


def paced(config: RunConfig) -> bool:
    """Frames come at the source's own rate: a live source, or a file played with --realtime."""
    if source_is_live(config.source):
        return True
    from polyp_rt.realtime.sources import source_path

    path = source_path(config.source) if config.source else None
    return config.capture.realtime and not (path is not None and path.is_dir())


def settle_inference(config: RunConfig) -> str:
    """`latency` or `throughput`: as asked, else throughput for a file played flat out."""
    if config.inference != "auto":
        return config.inference
    return "latency" if paced(config) or config.display == "passthrough" else "throughput"


def requests_for(config: RunConfig) -> int:
    """Inference requests to open the engine with for this run."""
    return THROUGHPUT_REQUESTS if settle_inference(config) == "throughput" else 1


def settle_modes(config: RunConfig, engine: Engine) -> Modes:
    """The modes this run goes by; PolypRtError for a combination that cannot work."""
    display = config.display
    if display == "auto":
        device = "cuda" if engine.is_cuda else "cpu"
        display = LIVE_DISPLAY[device] if source_is_live(config.source) else "synced"
    inference = settle_inference(config)
    if display == "passthrough":
        if not paced(config):
            raise PolypRtError(
                "--display passthrough shows each frame as it comes, so it needs a source with a rate: "
                "a camera, a stream, a synthetic scene, or a video file with --realtime"
            )
        if inference == "throughput":
            raise PolypRtError(
                "--display passthrough infers the newest frame, one at a time: use --inference latency "
                "(or auto) with it; --inference throughput is for files played flat out"
            )
    requests = min(engine.requests, THROUGHPUT_REQUESTS) if inference == "throughput" else 1
    if requests == 1:
        if config.inference == "throughput":
            log.warning("the %s engine runs one request at a time: the latency mode runs", engine.name)
        inference = "latency"  # what ran
    return Modes(display, inference, requests)
