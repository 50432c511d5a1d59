"""What a run's statistics JSON holds besides the latency figures: how the run ended, the engine,
what each sink wrote, the configuration and the library versions.

`polyp-rt run --stats-json` and each video of `polyp-rt batch` write the same document.
"""

from __future__ import annotations

import hashlib
import platform
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polyp_rt.core.redact import HIDDEN, redact

if TYPE_CHECKING:
    from polyp_rt.engines.base import Engine
    from polyp_rt.realtime.config import RunConfig
    from polyp_rt.realtime.pipeline import Outcome, Pipeline

PACKAGES = (
    "polyp-rt",
    "torch",
    "torchvision",
    "segmentation-models-pytorch",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "av",
    "opencv-python",
    "numpy",
    "openvino",
    "ray",
)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    versions["tensorrt"] = tensorrt_version() or "not installed"
    return versions


def tensorrt_version() -> str | None:
    try:
        from polyp_rt.engines.backends.tensorrt_backend import require_tensorrt

        return require_tensorrt()
    except Exception:  # BackendUnavailable, or a broken install
        return None


AS_FAST_AS_POSSIBLE = "as fast as possible"


def pacing(pipeline: Pipeline) -> str:
    """How the source gave its frames: "live", "at its own rate" (a file played --realtime) or
    `AS_FAST_AS_POSSIBLE` (a file or an image folder, read as fast as the pipeline takes them: the
    frames wait in the capture queue, so `processing_ms` is their latency, not `e2e_ms`)."""
    source = pipeline.source
    if source.live:
        return "live"
    return "at its own rate" if source.realtime else AS_FAST_AS_POSSIBLE


def run_facts(engine: Engine, pipeline: Pipeline, outcome: Outcome) -> dict[str, Any]:
    """How the run ended, how its source was paced, the engine, and what each sink wrote (under
    the sink's own key)."""
    facts: dict[str, Any] = {
        "reason": outcome.reason,
        "exit_code": outcome.exit_code,
        "error": str(outcome.error) if outcome.error is not None else None,
        "pacing": pacing(pipeline),
        "engine": engine.describe(),
    }
    gate = pipeline.overlay.gate
    facts["alert_gate"] = {"min_frames": gate.min_frames, "hold": gate.hold, **asdict(gate.counts)}
    for sink in pipeline.sinks:
        facts.update(sink.summary())
    return facts


def model_facts(model: Path) -> dict[str, Any]:
    """Which model ran: its path, whether it is one of the bundled models, its sha256."""
    from polyp_rt.realtime.config import DEMO_MODEL, DEMO_MODEL_INT8

    with model.open("rb") as f:
        sha256 = hashlib.file_digest(f, "sha256").hexdigest()
    bundled = model.resolve() in (DEMO_MODEL.resolve(), DEMO_MODEL_INT8.resolve())
    return {"path": str(model), "bundled": bundled, "sha256": sha256}


def stats_document(config: RunConfig, facts: dict[str, Any]) -> dict[str, Any]:
    """`run_facts` plus the model that ran, the configuration (a stream URL redacted, the access
    token hidden) and the library versions: the stats JSON's extra keys. `config` has its model
    settled (`RunConfig.with_model`)."""
    from polyp_rt.realtime.threads import thread_plan

    threads = thread_plan(config.threads).to_json()
    settings = asdict(config)
    settings["source"] = redact(config.source) if config.source else config.source
    if config.token:
        settings["token"] = HIDDEN
    return {
        **facts,
        "model": model_facts(config.model_file),
        "config": settings,
        "threads": threads,
        "versions": package_versions(),
    }
