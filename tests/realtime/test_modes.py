"""Which modes a run goes by (realtime/modes.py), chosen as docs/LIVE.md says, and the throughput
mode's masks: those of the latency mode, frame for frame, on both CPU runtimes."""

from __future__ import annotations

import json

import pytest

from polyp_rt.cli.main import main
from polyp_rt.realtime.compose import open_run_engine
from polyp_rt.realtime.config import DEMO_MODEL_INT8, CaptureConfig, RunConfig
from polyp_rt.realtime.modes import settle_modes, source_is_live

LIVE = "synthetic:96x80@30"


@pytest.mark.parametrize(
    ("source", "options", "display", "inference", "requests"),
    [
        ("clip", {}, "synced", "throughput", 2),  # a file flat out: frame-exact masks, throughput
        ("clip", {"capture": CaptureConfig(realtime=True)}, "synced", "latency", 1),  # at its own rate
        (
            "clip",
            {"capture": CaptureConfig(realtime=True), "display": "passthrough"},
            "passthrough",
            "latency",
            1,
        ),
        ("clip", {"inference": "latency"}, "synced", "latency", 1),
        (LIVE, {}, "passthrough", "latency", 1),  # live on the CPU: the video never waits
        (LIVE, {"display": "synced"}, "synced", "latency", 1),
        (LIVE, {"display": "synced", "inference": "throughput"}, "synced", "throughput", 2),
    ],
)
@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_modes_are_chosen_as_documented(
    micro_onnx, synthetic_clip, backend, source, options, display, inference, requests
):
    spec = str(synthetic_clip) if source == "clip" else source
    config = RunConfig(source=spec, model=micro_onnx, backend=backend, device="cpu", **options)
    with open_run_engine(config) as engine:
        modes = settle_modes(config, engine)
        assert (modes.display, modes.inference, modes.requests) == (display, inference, requests)
        assert engine.requests == requests and engine.describe()["requests"] == requests
    if backend == "openvino":
        assert ("throughput hint" in engine.provider) == (requests == 2)


def test_live_sources_are_told_by_their_form():
    for spec in ("0", "/dev/video2", "rtsp://camera/stream", "http://127.0.0.1:8554/live.ts", LIVE):
        assert source_is_live(spec), spec
    for spec in ("clip.mp4", "frames/", None):
        assert not source_is_live(spec), spec


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--display", "passthrough"], "needs a source with a rate"),
        (["--display", "passthrough", "--realtime", "--inference", "throughput"], "use --inference latency"),
    ],
)
def test_impossible_combinations_are_one_line_errors(micro_onnx, synthetic_clip, capsys, flags, message):
    args = ["--source", str(synthetic_clip), "--model", str(micro_onnx), "--device", "cpu", "--headless"]
    assert main([*args, *flags]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0]


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_throughput_gives_the_masks_of_latency(synthetic_clip, tmp_path, backend):
    """The bundled INT8 model on the clip flat out: each mask PNG byte for byte the same."""
    masks = {}
    for mode in ("latency", "throughput"):
        out, stats = tmp_path / mode, tmp_path / f"{mode}.json"
        args = ["--source", str(synthetic_clip), "--model", str(DEMO_MODEL_INT8), "--backend", backend]
        args += ["--device", "cpu", "--headless", "--inference", mode]
        assert main([*args, "--masks-out", str(out), "--stats-json", str(stats)]) == 0
        report = json.loads(stats.read_text())
        requests = 2 if mode == "throughput" else 1
        assert report["modes"] == {"display": "synced", "inference": mode, "requests": requests}
        assert report["engine"]["requests"] == requests
        assert report["frames_processed"] == report["frames_inferred"] == 36
        masks[mode] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert list(masks["latency"]) == [f"{i:06d}.png" for i in range(36)]
    assert masks["throughput"] == masks["latency"]
