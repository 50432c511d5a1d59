"""What a run's statistics JSON holds besides the latency figures: how the run ended, the engine,
what each sink wrote, the configuration and the library versions.

`polyp-rt run --stats-json` and each video of `polyp-rt batch` write the same document.
"""

from __future__ import annotations

import platform
from dataclasses import asdict
from importlib import metadata
from typing import TYPE_CHECKING, Any

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


def run_facts(engine: Engine, pipeline: Pipeline, outcome: Outcome) -> dict[str, Any]:
    """How the run ended, the engine, and what each sink wrote (under the sink's own key)."""
    facts: dict[str, Any] = {
        "reason": outcome.reason,
        "exit_code": outcome.exit_code,
        "error": str(outcome.error) if outcome.error is not None else None,
        "engine": engine.describe(),
    }
    gate = pipeline.overlay.gate
    facts["alert_gate"] = {"min_frames": gate.min_frames, "hold": gate.hold, **asdict(gate.counts)}
    for sink in pipeline.sinks:
        facts.update(sink.summary())
    return facts


def stats_document(config: RunConfig, facts: dict[str, Any]) -> dict[str, Any]:
    """`run_facts` plus the configuration and the library versions: the stats JSON's extra keys."""
    from polyp_rt.realtime.threads import thread_plan

    threads = thread_plan(config.threads).to_json()
    return {**facts, "config": asdict(config), "threads": threads, "versions": package_versions()}
