"""A live source that disappears: a stalled or unplugged camera, an HTTP stream cut or stalled
mid-stream. The pipeline reconnects with back-off, says so on the status line and in the log,
and gives up after --reconnects attempts in a row with one line; the recording is kept."""

from __future__ import annotations

import json

import pytest

from polyp_rt.cli.main import main
from polyp_rt.engines.registry import open_engine
from polyp_rt.realtime.compose import compose
from polyp_rt.realtime.config import CaptureConfig, RunConfig


def run_cli(model, source, tmp_path, *extra, max_frames=900):
    out, stats = tmp_path / "live.mkv", tmp_path / "stats.json"
    args = ["--source", source, "--model", str(model), "--device", "cpu", "--headless"]
    args += ["--max-frames", str(max_frames), *extra]  # bounded: a missed fault fails, not hangs
    code = main([*args, "--record", str(out), "--stats-json", str(stats)])
    return code, out, json.loads(stats.read_text())


@pytest.mark.parametrize("display", ["passthrough", "synced"])
def test_stalled_camera_reconnects_and_the_status_line_says_so(micro_onnx, tmp_path, decoded, display):
    statuses: list[str] = []

    def status_line(stats, status):
        if not statuses or statuses[-1] != status:
            statuses.append(status)

    config = RunConfig(
        source="faulty:96x80@30?stall_at=15&faults=1",
        record=tmp_path / "live.mp4",
        queue_size=2,
        max_frames=40,
        capture=CaptureConfig(stall_timeout=0.3, reconnects=2),
        display=display,
    )
    with (
        open_engine(micro_onnx, device="cpu") as engine,
        compose(config, engine, on_frame=status_line) as pipeline,
    ):
        outcome = pipeline.run()
    written = pipeline.sinks[0].summary()["recording"]["frames"]
    assert outcome.reason == "max frames" and outcome.error is None
    assert outcome.stats.events == [
        "synthetic source: no frame for 0.3 s (injected stall); reconnecting (1/2)",
        "synthetic 96x80@30: frames again after 1 reconnect(s)",
    ]
    # shown while no frame came, cleared after; not taken for a stall of the model
    assert statuses == ["", "reconnecting 1/2", ""]
    assert decoded(tmp_path / "live.mp4")[0] == written == outcome.stats.frames_out


def test_unplugged_camera_gives_up_with_one_line_and_keeps_the_recording(
    micro_onnx, tmp_path, capsys, one_error_line, decoded, finalised, no_pipeline_threads
):
    code, out, report = run_cli(
        micro_onnx, "faulty:96x80@30?gone_at=15", tmp_path, "--reconnects", "2", "--stall-timeout", "0.3"
    )
    assert code == 2
    line = one_error_line(capsys.readouterr().err)
    expected = "synthetic source: cannot open the device (unplugged) (gave up after 2 reconnects)"
    assert line == f"error: {expected}" and report["error"] == expected
    assert report["reason"] == "error" and report["frames_in"] == 15
    assert report["events"] == [
        "synthetic source: device lost (unplugged); reconnecting (1/2)",
        "synthetic source: cannot open the device (unplugged); reconnecting (2/2)",
    ]
    assert finalised(out) and decoded(out)[0] == report["recording"]["frames"] >= 1
    assert no_pipeline_threads() == []


@pytest.mark.parametrize(
    ("first", "said"),
    [("cut", "the server ended the stream"), ("stall", "no data for 0.5 s (stream stalled)")],
)
def test_http_stream_cut_or_stalled_mid_stream_reconnects(
    micro_onnx, tmp_path, stream_server, decoded, first, said
):
    server = stream_server([first, "full"])
    code, out, report = run_cli(
        micro_onnx, server.url, tmp_path, "--reconnects", "2", "--stall-timeout", "0.5", max_frames=100
    )
    assert code == 0 and report["reason"] == "max frames"
    assert server.connections == 2
    assert len(report["events"]) == 2
    assert report["events"][0].startswith(f"{server.url}: {said}")
    assert report["events"][0].endswith("reconnecting (1/2)")
    assert report["events"][1] == f"stream {server.url}: frames again after 1 reconnect(s)"
    assert decoded(out)[0] == report["recording"]["frames"] == report["frames_processed"]


def test_http_server_gone_gives_up_with_one_line(
    micro_onnx, tmp_path, stream_server, capsys, one_error_line, decoded, finalised
):
    server = stream_server(["cut"], gone=True)
    code, out, report = run_cli(
        micro_onnx, server.url, tmp_path, "--reconnects", "2", "--stall-timeout", "0.5"
    )
    assert code == 2 and server.connections == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {server.url}: cannot open the stream")
    assert line.endswith("(gave up after 2 reconnects)")
    assert [e.rsplit(";", 1)[1] for e in report["events"]] == [" reconnecting (1/2)", " reconnecting (2/2)"]
    assert finalised(out) and decoded(out)[0] == report["recording"]["frames"] >= 1
