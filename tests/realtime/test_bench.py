import json

from polyp_rt.cli.main import main

LATENCY_KEYS = {"mean_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms", "fps"}


def test_model_bench_json_has_both_cpu_backends(tiny_onnx, capsys):
    args = ["bench", "--model", str(tiny_onnx), "--backends", "torch,onnxruntime,tensorrt", "--device", "cpu"]
    assert main([*args, "--iterations", "8", "--warmup", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {r["backend"]: r for r in report["results"]}
    for backend in ("torch", "onnxruntime"):
        assert set(rows[backend]) >= LATENCY_KEYS
        assert rows[backend]["p50_ms"] <= rows[backend]["p99_ms"] <= rows[backend]["max_ms"]
        assert rows[backend]["device"] == "cpu" and rows[backend]["batch"] == 1
        assert rows[backend]["size"] == [64, 64]
    assert rows["onnxruntime"]["provider"] == "CPUExecutionProvider"
    assert "random weights" in rows["torch"]["provider"]  # torch times the ONNX's architecture
    if "skipped" in rows["tensorrt"]:
        assert "TensorRT" in rows["tensorrt"]["skipped"]


def test_presets_bench_and_plot(tmp_path, capsys):
    plot = tmp_path / "latency.png"
    args = ["bench", "--presets", "cpu", "--size", "64", "--backends", "torch,onnxruntime", "--device", "cpu"]
    assert main([*args, "--iterations", "4", "--warmup", "1", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime" in out and "torch" in out
    assert plot.stat().st_size > 0


def test_pipeline_bench_json(tiny_onnx, capsys):
    args = [
        "bench",
        "--pipeline",
        "--source",
        "synthetic:96x80@30",
        "--frames",
        "20",
        "--model",
        str(tiny_onnx),
    ]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames_in"] == 20
    assert report["frames_processed"] + report["dropped_total"] == 20
    assert set(report["stages_ms"]) == {"queue", "preprocess", "infer", "postprocess", "overlay"}
    assert report["e2e_ms"]["count"] == report["frames_processed"]
    assert report["fps"] > 0 and report["sequential_fps"] > 0
    ratios = report["ratios"]
    assert ratios["e2e_p50_over_model_p50"] > 0 and ratios["threaded_fps_over_sequential_fps"] > 0
