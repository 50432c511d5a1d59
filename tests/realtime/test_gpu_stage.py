"""The torch (GPU) frame path against the CPU path: same masks, same tint.

TorchStage runs on CPU tensors too, so its arithmetic is checked everywhere;
the CUDA-specific parts (pinned upload slots, streams, CUDA events) run under the
`gpu` marker where a GPU exists.
"""

import numpy as np
import pytest

from polyp_rt.engines.registry import open_engine
from polyp_rt.realtime.compose import make_stage
from polyp_rt.realtime.config import RunConfig
from polyp_rt.realtime.cpu_stage import CpuStage
from polyp_rt.realtime.frame import Frame, Stamp, now_ns
from polyp_rt.realtime.gpu_stage import TorchStage
from polyp_rt.realtime.overlay import tint
from polyp_rt.train.scenes import SyntheticClip


def frames(width, height, count=6):
    clip = SyntheticClip(width, height, seed=3)
    return [Frame(i, i / 30, now_ns(), clip.frame(i * 20)[0]) for i in range(count)]


@pytest.mark.parametrize(("width", "height"), [(160, 128), (333, 251)])
def test_torch_stage_matches_cpu_stage_on_cpu_tensors(tiny_run, width, height):
    with open_engine(tiny_run / "best.pt", device="cpu") as engine:
        cpu, torch_path = CpuStage(engine), TorchStage(engine, color=(0, 255, 0), alpha=0.4)
        for frame in frames(width, height):
            on_cpu = cpu(Frame(frame.index, frame.pts_s, frame.t_capture_ns, frame.rgb))
            a, a_prob = on_cpu.mask, on_cpu.max_prob
            b = torch_path(frame)
            assert b.mask.shape == (height, width) and b.mask.dtype == np.uint8
            assert b.blended.shape == (height, width, 3) and b.blended.dtype == np.uint8
            assert set(np.unique(b.mask)) <= {0, 1}
            # both shrink with pixel-area weights: the masks agree but for float rounding at the edges
            assert np.count_nonzero(a != b.mask) <= 0.001 * a.size
            reference = tint(frame.rgb, b.mask, (0, 255, 0), 0.4)
            assert np.abs(reference.astype(int) - b.blended.astype(int)).max() <= 1
            assert {Stamp.PREPROCESSED, Stamp.INFERRED, Stamp.POSTPROCESSED} <= set(b.stamps)
            assert abs(b.max_prob - a_prob) < 1e-3


def test_torch_stage_smoothing_matches_cpu_stage(tiny_run):
    with open_engine(tiny_run / "best.pt", device="cpu") as engine:
        cpu, torch_path = CpuStage(engine, smoothing=0.6), TorchStage(engine, smoothing=0.6)
        for frame in frames(128, 128, count=5):
            a = cpu(Frame(frame.index, 0, 0, frame.rgb)).mask
            b = torch_path(frame).mask
            assert np.count_nonzero(a != b) <= 0.001 * a.size


def test_make_stage_keeps_cpu_engines_on_the_cpu_path(tiny_onnx, tiny_run):
    with (
        open_engine(tiny_onnx, device="cpu") as ort,
        open_engine(tiny_run / "best.pt", device="cpu") as torch_cpu,
    ):
        assert isinstance(make_stage(ort, RunConfig()), CpuStage)
        assert isinstance(make_stage(torch_cpu, RunConfig()), CpuStage)
    with pytest.raises(TypeError, match="numpy batches only"), open_engine(tiny_onnx, device="cpu") as ort:
        TorchStage(ort)


@pytest.fixture
def cpu_and_cuda_stages(tiny_run):
    """The same trained model on the CPU path and on the CUDA frame path."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    with (
        open_engine(tiny_run / "best.pt", device="cpu") as cpu_engine,
        open_engine(tiny_run / "best.pt", device="cuda:0") as gpu_engine,
    ):
        gpu = make_stage(gpu_engine, RunConfig())
        yield CpuStage(cpu_engine), gpu
        gpu.close()


@pytest.mark.gpu
def test_cuda_path_matches_cpu_path(cpu_and_cuda_stages):
    cpu, gpu = cpu_and_cuda_stages
    assert isinstance(gpu, TorchStage)
    for frame in frames(640, 480):
        gpu.prepare(frame)
        assert frame.upload is not None
        a = cpu(Frame(frame.index, 0, 0, frame.rgb)).mask
        b = gpu(frame)
        assert np.count_nonzero(a != b.mask) <= 0.001 * a.size  # TF32/cuDNN kernels differ slightly
        assert set(b.gpu_ms) == {"preprocess", "infer", "postprocess"}


@pytest.mark.gpu
def test_cuda_path_follows_frame_size_changes_with_uploads_in_flight(cpu_and_cuda_stages):
    """A folder of images of different sizes: the capture thread uploads ahead of inference."""
    cpu, gpu = cpu_and_cuda_stages
    gpu.warm_up(480, 640)
    sized = [frames(640, 480, 2), frames(333, 251, 2), frames(640, 480, 2)]
    batch = [f for group in sized for f in group]
    for frame in batch:  # all uploads started before the first frame is computed
        gpu.prepare(frame)
    for frame in batch:
        a = cpu(Frame(frame.index, 0, 0, frame.rgb)).mask
        b = gpu(frame)
        assert b.mask.shape == frame.rgb.shape[:2]
        assert np.count_nonzero(a != b.mask) <= 0.001 * a.size
