"""The live path needs no PyTorch: run on an ONNX model in a process where importing torch
(or anything of the training stack) fails, and check nothing even tried."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from polyp_rt.batch.config import BatchConfig
from polyp_rt.cli.main import main
from polyp_rt.realtime.config import (
    DEMO_CLIP,
    DEMO_MODEL,
    DEMO_MODEL_INT8,
    RunConfig,
    bundled_model_for,
    model_to_run,
)

TRAINING_STACK = (
    "torch",
    "torchvision",
    "segmentation_models_pytorch",
    "timm",
    "matplotlib",
    "onnx",
    "onnxscript",
)
RUNNER = """
import importlib.abc, json, sys
tried = []
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            tried.append(name)
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
sys.meta_path.insert(0, Block())
from polyp_rt.cli.main import main
code = main(sys.argv[1:])
print("RESULT", json.dumps({{"code": code, "tried": tried}}))
"""


def without_training_stack(*args: str) -> dict:
    code = RUNNER.format(blocked=TRAINING_STACK)
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, out.stderr
    return json.loads(lines[-1].removeprefix("RESULT "))


def test_the_live_path_on_an_onnx_model_imports_no_torch(micro_onnx, synthetic_clip, tmp_path):
    stats = tmp_path / "stats.json"
    args = ["--source", str(synthetic_clip), "--model", str(micro_onnx), "--headless"]
    args += ["--record", str(tmp_path / "out.mp4"), "--truth", str(synthetic_clip.with_name("clip_masks"))]
    result = without_training_stack(*args, "--stats-json", str(stats))
    assert result == {"code": 0, "tried": []}
    report = json.loads(stats.read_text())
    assert report["frames_processed"] == 36 and report["truth"]["images"] == 36
    assert Path(report["recording"]["path"]).stat().st_size > 0 and stats.with_suffix(".png").is_file()


@pytest.mark.skipif(not DEMO_MODEL.is_file(), reason="the bundled model is not in this checkout")
def test_the_demo_and_bench_and_eval_of_onnx_need_no_torch(tmp_path, kvasir_dir):
    stats = tmp_path / "demo.json"
    demo = without_training_stack(
        "--source", str(DEMO_CLIP), "--headless", "--max-frames", "5", "--stats-json", str(stats)
    )
    assert demo == {"code": 0, "tried": []}
    bundled = DEMO_MODEL_INT8 if DEMO_MODEL_INT8.is_file() else DEMO_MODEL  # on a CPU: INT8, if shipped
    assert json.loads(stats.read_text())["config"]["model"] == str(bundled)
    bench = without_training_stack("bench", "--iterations", "3", "--warmup", "1", "--json")
    assert bench == {"code": 0, "tried": []}
    scored = without_training_stack(
        "eval", "--data", str(kvasir_dir), "--model", str(DEMO_MODEL), "--split", "all"
    )
    assert scored == {"code": 0, "tried": []}


def test_a_command_that_needs_the_training_stack_names_the_extra(capsys):
    result = subprocess.run(
        [sys.executable, "-c", RUNNER.format(blocked=TRAINING_STACK), "train", "--data", "x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert 'polyp-rt train needs torch, which comes with pip install "polyp-rt[train]"' in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not DEMO_MODEL_INT8.is_file(), reason="the bundled INT8 model is not in this checkout")
def test_the_bundled_model_is_int8_on_a_cpu_and_fp32_on_a_gpu(tmp_path):
    assert bundled_model_for("auto", "cpu") == DEMO_MODEL_INT8
    assert bundled_model_for("onnxruntime", "cpu") == DEMO_MODEL_INT8
    assert bundled_model_for("onnxruntime", "cuda:0") == DEMO_MODEL
    assert model_to_run(None, "onnxruntime", "cpu") == DEMO_MODEL_INT8
    assert model_to_run(DEMO_MODEL, "onnxruntime", "cpu") == DEMO_MODEL, "a model named is the model run"
    assert RunConfig(device="cpu").with_model().model == DEMO_MODEL_INT8
    cpu_tasks = BatchConfig(inputs=[tmp_path], out=tmp_path / "out")
    assert cpu_tasks.run_config().model == DEMO_MODEL_INT8.resolve(), "a task without a GPU runs INT8"
    on_gpus = {"gpus_per_task": 1.0, "device": "cuda:0", "backend": "onnxruntime"}
    gpu_tasks = BatchConfig(inputs=[tmp_path], out=tmp_path / "out", **on_gpus)  # type: ignore[arg-type]
    assert gpu_tasks.run_config().model == DEMO_MODEL.resolve()


@pytest.mark.skipif(not DEMO_MODEL_INT8.is_file(), reason="the bundled INT8 model is not in this checkout")
def test_run_bench_and_eval_run_the_same_bundled_model_without_a_model(kvasir_dir, tmp_path, capsys):
    """On this CPU: the INT8 file, named in each one's report."""
    stats = tmp_path / "run.json"
    args = ["--source", str(DEMO_CLIP), "--headless", "--max-frames", "3", "--device", "cpu"]
    assert main([*args, "--stats-json", str(stats)]) == 0
    ran = json.loads(stats.read_text())["model"]
    assert ran["path"] == str(DEMO_MODEL_INT8) and ran["bundled"] and len(ran["sha256"]) == 64
    capsys.readouterr()
    bench = ["bench", "--pipeline", "--source", str(DEMO_CLIP), "--frames", "3", "--device", "cpu", "--json"]
    assert main(bench) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == str(DEMO_MODEL_INT8) and report["engine"]["precision"] == "int8"
    assert main(["bench", "--iterations", "2", "--warmup", "0", "--device", "cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["model"] == DEMO_MODEL_INT8.name
    assert main(["eval", "--data", str(kvasir_dir), "--split", "all", "--device", "cpu", "--json"]) == 0
    scored = json.loads(capsys.readouterr().out.splitlines()[0])
    assert scored["backend"]["precision"] == "int8" and scored["images"] > 0
