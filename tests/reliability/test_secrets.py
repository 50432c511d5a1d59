"""Secrets in a stream URL: `rtsp://user:pass@host/...`, `http://user:pass@...`, `?token=...`.

The stream is opened with the URL as given; everywhere a URL is shown or kept (the error line,
the INFO line, the closing table, the stats JSON's config, error and events, the histogram's
title, bench's report) its user info and secret-looking query values read `***`."""

from __future__ import annotations

import base64
import json
import socket

import pytest

from polyp_rt.cli.main import main
from polyp_rt.cli.run import latency_series, report
from polyp_rt.core.redact import redact
from polyp_rt.engines.registry import open_engine
from polyp_rt.realtime.compose import compose
from polyp_rt.realtime.config import CaptureConfig, RunConfig
from polyp_rt.realtime.outputs import histogram_path
from polyp_rt.realtime.plots import plot_latency

USER, PASSWORD, TOKEN = "viewer", "s3cret-pass", "t0ken-value"
SECRETS = (f"{USER}:", PASSWORD, TOKEN)


def urls(port: int) -> tuple[str, str]:
    """(the camera's URL with its credentials, the same as it should be shown)."""
    where = f"127.0.0.1:{port}/live.ts"
    return (
        f"http://{USER}:{PASSWORD}@{where}?token={TOKEN}&channel=2",
        f"http://***@{where}?token=***&channel=2",
    )


def port_of(server) -> int:
    return server.httpd.server_address[1]


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} shown in:\n{text}"


def run_cli(source, tmp_path, *extra):
    stats = tmp_path / "stats.json"
    args = ["--source", source, "--model", str(extra[0]), "--device", "cpu", "--headless", *extra[1:]]
    code = main([*args, "--stats-json", str(stats), "--record", str(tmp_path / "live.mkv")])
    return code, stats


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "rtsp://admin:hunter2@cam.local:554/live?token=abc&res=hd",
            "rtsp://***@cam.local:554/live?token=***&res=hd",
        ),
        ("http://admin@10.0.0.5/video", "http://***@10.0.0.5/video"),
        ("rtsp://u:p@ss@cam/x", "rtsp://***@cam/x"),  # an unencoded @ in the password: the last one ends it
        (
            "https://h/s.m3u8?user=a&password=b&X-Amz-Signature=c&api_key=d&sig=e&quality=720",
            "https://h/s.m3u8?user=***&password=***&X-Amz-Signature=***&api_key=***&sig=***&quality=720",
        ),
        ("srt://h:9000?passphrase=xyz&latency=200", "srt://h:9000?passphrase=***&latency=200"),
        ("https://h/live#access_token=jwt.a.b", "https://h/live#access_token=***"),
        ("rtsp://cam.local/stream1", "rtsp://cam.local/stream1"),  # nothing secret: unchanged
        ("synthetic:640x480@30?seed=1", "synthetic:640x480@30?seed=1"),  # not a URL
        ("/data/case@3/video.mp4", "/data/case@3/video.mp4"),
        (
            "rtsp://a:b@h/x: cannot open the stream (rtsp://a:b@h/x?token=t)",
            "rtsp://***@h/x: cannot open the stream (rtsp://***@h/x?token=***)",
        ),
    ],
)
def test_redact_hides_user_info_and_secret_query_values(url, shown):
    assert redact(url) == shown


def test_stream_credentials_are_used_to_open_it_and_shown_nowhere(micro_onnx, tmp_path, stream_server, capfd):
    server = stream_server(["cut", "full"], credentials=f"{USER}:{PASSWORD}")
    secret_url, shown = urls(port_of(server))
    code, stats = run_cli(
        secret_url,
        tmp_path,
        micro_onnx,
        "-v",
        "--reconnects",
        "2",
        "--stall-timeout",
        "0.5",
        "--max-frames",
        "100",
    )
    out, err = capfd.readouterr()  # the log (every level, with -v) goes to stderr
    text = stats.read_text()
    assert code == 0 and server.connections == 2
    basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    opened = [path for path, auth in server.requests if auth == basic]
    assert opened == [f"/live.ts?token={TOKEN}&channel=2"] * 2  # the real URL opened the stream, twice
    assert_no_secret(out, err, text)
    document = json.loads(text)
    assert document["config"]["source"] == shown
    assert document["events"][0].startswith(f"{shown}: the server ended the stream")
    assert document["events"][1] == f"stream {shown}: frames again after 1 reconnect(s)"
    # rich wraps long lines: compare without whitespace
    assert f"stream{shown}->micro.onnx" in "".join(err.split())  # the INFO line
    assert f"stream{shown}·" in "".join(out.split())  # the closing table's title


def test_an_unreachable_stream_is_one_line_without_its_credentials(
    micro_onnx, tmp_path, capfd, one_error_line
):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, stats = run_cli(f"rtsp://admin:hunter2@127.0.0.1:{port}/cam?auth=abc", tmp_path, micro_onnx)
    out, err = capfd.readouterr()
    assert code == 2 and not stats.exists()
    assert one_error_line(err).startswith(
        f"error: rtsp://***@127.0.0.1:{port}/cam?auth=***: cannot open the stream"
    )
    assert "hunter2" not in out + err and "admin" not in out + err and "abc" not in out + err


def test_a_stream_that_goes_away_keeps_its_credentials_out_of_the_error_and_events(
    micro_onnx, tmp_path, stream_server, capfd, one_error_line
):
    server = stream_server(["cut"], gone=True, credentials=f"{USER}:{PASSWORD}")
    secret_url, shown = urls(port_of(server))
    code, stats = run_cli(secret_url, tmp_path, micro_onnx, "--reconnects", "1", "--stall-timeout", "0.5")
    out, err = capfd.readouterr()
    document = json.loads(stats.read_text())
    assert code == 2 and server.connections == 1
    assert one_error_line(err).startswith(f"error: {shown}: cannot open the stream")
    assert document["error"].startswith(f"{shown}: cannot open the stream")
    assert document["events"][0].startswith(f"{shown}: the server ended the stream")
    assert_no_secret(out, err, stats.read_text())


def test_the_histogram_title_shows_the_stream_without_its_credentials(micro_onnx, tmp_path, stream_server):
    server = stream_server(["full"], credentials=f"{USER}:{PASSWORD}")
    secret_url, shown = urls(port_of(server))
    config = RunConfig(
        source=secret_url,
        headless=True,
        max_frames=20,
        stats_json=tmp_path / "stats.json",
        capture=CaptureConfig(),
    )
    with open_engine(micro_onnx, device="cpu") as engine, compose(config, engine) as pipeline:
        outcome = pipeline.run()
        report(config, engine, pipeline, outcome)
        samples = latency_series(outcome)
        title = f"stream {{}} · {engine.label} · {pipeline.modes.describe()} · {outcome.reason}"
    drawn = histogram_path(config.stats_json).read_bytes()
    plot_latency(samples, tmp_path / "redacted.png", title.format(shown))
    plot_latency(samples, tmp_path / "secret.png", title.format(secret_url))
    assert drawn == (tmp_path / "redacted.png").read_bytes() != (tmp_path / "secret.png").read_bytes()


def test_bench_reports_the_stream_without_its_credentials(micro_onnx, stream_server, capsys):
    server = stream_server(["full"], credentials=f"{USER}:{PASSWORD}")
    secret_url, shown = urls(port_of(server))
    args = ["bench", "--pipeline", "--source", secret_url, "--model", str(micro_onnx), "--device", "cpu"]
    assert main([*args, "--frames", "20", "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["source"] == shown
    assert_no_secret(out)


def test_a_url_with_a_mistyped_scheme_is_refused_without_its_credentials(
    micro_onnx, tmp_path, capfd, one_error_line
):
    code, _ = run_cli(
        "rtps://admin:hunter2@cam.local/live", tmp_path, micro_onnx
    )  # rtps: not a scheme we know
    out, err = capfd.readouterr()
    assert code == 2
    assert one_error_line(err).startswith("error: rtps://***@cam.local/live: no such file or folder")
    assert "hunter2" not in out + err
