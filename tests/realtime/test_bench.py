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
    from polyp_rt.engines.backends.tensorrt_backend import TensorRTEngine

    # TensorRT needs an engine file: skipped here with its reason, whether TensorRT is installed or not
    reason = TensorRTEngine.unavailable("cuda:0")
    assert rows["tensorrt"]["skipped"] == (
        reason
        or "tensorrt needs a .engine/.plan file: make one from "
        f"{tiny_onnx.name} (`polyp-rt build --onnx MODEL.onnx -o model.engine`) and bench that"
    )


def test_every_cpu_runtime_side_by_side_with_int8(tiny_onnx, synthetic_data, tmp_path, capsys):
    from polyp_rt.export.config import QuantizeConfig
    from polyp_rt.export.int8 import quantize_int8

    int8 = tmp_path / "tiny_int8.onnx"
    quantize_int8(
        QuantizeConfig(
            onnx=tiny_onnx, output=int8, calibrate=synthetic_data, images=8, verify_images=8, min_dice=0.5
        )
    )
    args = [
        "bench",
        "--model",
        str(tiny_onnx),
        str(int8),
        "--backends",
        "onnxruntime,openvino",
        "--device",
        "cpu",
    ]
    assert main([*args, "--iterations", "4", "--warmup", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    assert [(r["model"], r["backend"], r["precision"]) for r in rows] == [
        (tiny_onnx.name, "onnxruntime", "fp32"),
        (tiny_onnx.name, "openvino", "fp32"),
        (int8.name, "onnxruntime", "int8"),
        (int8.name, "openvino", "int8"),
    ]
    assert all(set(r) >= LATENCY_KEYS for r in rows)


def test_presets_bench_and_plot(tmp_path, capsys):
    plot = tmp_path / "latency.png"
    args = ["bench", "--presets", "cpu", "--size", "64", "--backends", "torch,onnxruntime", "--device", "cpu"]
    assert main([*args, "--iterations", "4", "--warmup", "1", "--plot", str(plot)]) == 0
    capsys.readouterr()
    assert main([*args, "--iterations", "4", "--warmup", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    assert [(r["model"], r["backend"], r["size"]) for r in rows] == [
        ("cpu", "torch", [64, 64]),
        ("cpu", "onnxruntime", [64, 64]),
    ]
    import cv2

    picture = cv2.imread(str(plot))
    assert picture is not None and picture.shape[:2] == (420, 1100) and picture.std() > 10  # a drawn plot


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
    assert set(report["stages_ms"]) == {
        "queue",
        "preprocess",
        "infer",
        "postprocess",
        "output queue",
        "overlay",
    }
    assert report["e2e_ms"]["count"] == report["frames_processed"]
    # live on the CPU: the passthrough display, its two delays apart
    assert report["modes"] == {"display": "passthrough", "inference": "latency", "requests": 1}
    assert report["video_delay_ms"] == report["e2e_ms"]
    for delay in ("video_delay_ms", "annotation_delay_ms"):
        assert set(report[delay]) == {"count", "mean", "p50", "p90", "p99", "max"}
    assert 0 < report["annotation_delay_ms"]["count"] <= report["frames_inferred"]
    assert report["fps"] > 0 and report["sequential_fps"] > 0
    ratios = report["ratios"]
    assert ratios["e2e_p50_over_model_p50"] > 0 and ratios["threaded_fps_over_sequential_fps"] > 0
