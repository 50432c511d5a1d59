"""The torch (GPU) frame path against the CPU path: same masks, same tint.

TorchStage runs on CPU tensors too, so its arithmetic is checked everywhere;
the CUDA-specific parts (pinned upload slots, streams, CUDA events) run under the
`gpu` marker where a GPU exists.
"""

import numpy as np
import pytest
import torch

from polyp_rt.engines.registry import open_engine
from polyp_rt.realtime.compose import make_stage
from polyp_rt.realtime.config import OverlayConfig, RunConfig
from polyp_rt.realtime.cpu_stage import CpuStage
from polyp_rt.realtime.frame import Frame, Stamp, now_ns
from polyp_rt.realtime.gpu_stage import TorchStage, outline_band
from polyp_rt.realtime.overlay import Hud, Overlay, tint
from polyp_rt.realtime.style import OverlayStyle, outline_width
from polyp_rt.train.scenes import SyntheticClip

GREEN_NO_OUTLINE = OverlayStyle(color=(0, 255, 0), alpha=0.4, mask=True, contours=False)


def frames(width, height, count=6):
    clip = SyntheticClip(width, height, seed=3)
    return [Frame(i, i / 30, now_ns(), clip.frame(i * 20)[0]) for i in range(count)]


@pytest.mark.parametrize(("width", "height"), [(160, 128), (333, 251)])
def test_torch_stage_matches_cpu_stage_on_cpu_tensors(tiny_run, width, height):
    with open_engine(tiny_run / "best.pt", device="cpu") as engine:
        cpu, torch_path = CpuStage(engine), TorchStage(engine, style=GREEN_NO_OUTLINE)
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
            assert b.area == pytest.approx(np.count_nonzero(b.mask) / b.mask.size)


def disc(size, radius):
    y, x = np.mgrid[:size, :size]
    return (x - size / 2) ** 2 + (y - size / 2) ** 2 <= radius**2


def test_outline_band_follows_the_mask_edge():
    import cv2

    mask = disc(200, 60)
    band = outline_band(torch.from_numpy(mask), 4).numpy()
    # the outline a CPU overlay would draw: contour of width 4 along the same edge
    drawn = np.zeros(mask.shape, np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(drawn, contours, -1, 1, 4)
    edge = drawn.astype(bool)
    assert np.count_nonzero(band & edge) >= 0.9 * np.count_nonzero(edge)
    inside = distance_to_edge(mask)
    assert inside[band].max() <= 3  # nothing far from the edge is painted
    assert not outline_band(torch.zeros(50, 50, dtype=torch.bool), 4).any()


def distance_to_edge(mask):
    import cv2

    m = mask.astype(np.uint8)
    return np.maximum(cv2.distanceTransform(m, cv2.DIST_L2, 3), cv2.distanceTransform(1 - m, cv2.DIST_L2, 3))


def test_torch_stage_draws_the_outline_and_the_overlay_leaves_it(tiny_run):
    with open_engine(tiny_run / "best.pt", device="cpu") as engine:
        stage = TorchStage(engine)  # the flags' defaults: green at 0.4, outlined
    rgb = frames(320, 240, 1)[0].rgb
    logits = torch.where(torch.from_numpy(disc(64, 20)), 5.0, -5.0)[None, None]  # a disc at model size
    mask, blended, numbers = stage.postprocess(logits, torch.from_numpy(rgb), outline=True)
    frame = Frame(0, 0.0, now_ns(), rgb, mask=mask.numpy(), blended=blended.numpy(), outlined=True)
    frame.max_prob, frame.area = numbers.tolist()
    assert frame.area == pytest.approx(np.count_nonzero(frame.mask) / frame.mask.size) and 0 < frame.area < 1
    edge = outline_band(mask.bool(), outline_width(240)).numpy()
    assert (frame.blended[edge] == (0, 255, 0)).all()
    before = frame.blended.copy()
    overlay = Overlay(OverlayConfig(hud=False, alert_min_frames=1, alert_hold=0))  # every mask drawn
    overlay.draw(frame, Hud())
    assert frame.overlay is frame.blended and np.array_equal(frame.overlay, before)  # no second outline
    overlay.style.mask = False  # the outline was drawn on the tinted picture: the plain one gets its own
    plain = overlay.redraw(frame, Hud())
    assert (plain[edge] == (0, 255, 0)).mean() > 0.3


def test_the_stage_draws_in_the_overlays_style_and_follows_its_toggles(tiny_run):
    """One style object: the window's keys switch the overlay and the GPU stage at once."""
    overlay = Overlay(OverlayConfig(color="255,0,0", mask_alpha=0.5, hud=False))
    rgb = np.full((64, 64, 3), 100, np.uint8)
    logits = torch.where(torch.from_numpy(disc(64, 20)), 5.0, -5.0)[None, None]
    with open_engine(tiny_run / "best.pt", device="cpu") as engine:
        stage = TorchStage(engine, style=overlay.style)
        assert stage.style is overlay.style
        frame = stage(Frame(0, 0.0, now_ns(), rgb))
        assert frame.outlined
        overlay.style.contours = False  # the `c` key
        assert not stage(Frame(1, 0.0, now_ns(), rgb)).outlined
    _, blended, _ = stage.postprocess(logits, torch.from_numpy(rgb))
    assert tuple(blended[32, 32].tolist()) == (178, 50, 50)  # 100 * 0.5 + (255, 0, 0) * 0.5, rounded


@pytest.fixture
def cpu_and_cuda_stages(tiny_run):
    """The same trained model on the CPU path and on the CUDA frame path."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    with (
        open_engine(tiny_run / "best.pt", device="cpu") as cpu_engine,
        open_engine(tiny_run / "best.pt", device="cuda:0") as gpu_engine,
    ):
        gpu = make_stage(gpu_engine, RunConfig(), Overlay(OverlayConfig()).style)
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
def test_frames_decoded_into_the_pinned_ring_are_uploaded_without_a_copy(cpu_and_cuda_stages):
    import gc

    cpu, gpu = cpu_and_cuda_stages
    gpu.warm_up(480, 640)
    pool = gpu._pool
    free = len(pool._free)
    done = []
    for frame in frames(640, 480, 3):
        buffer = gpu.frame_buffer(480, 640)
        assert buffer is not None and pool.slot_of(buffer) is not None
        np.copyto(buffer, frame.rgb)  # as a source decodes into it
        lent = Frame(frame.index, 0, now_ns(), buffer)
        gpu.prepare(lent)
        a = cpu(Frame(frame.index, 0, 0, frame.rgb)).mask
        assert np.count_nonzero(a != gpu(lent).mask) <= 0.001 * a.size
        done.append(lent)
    assert len(pool._free) == free - 3
    del done, lent, buffer
    gc.collect()
    assert len(pool._free) == free  # each slot came back with its frame


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
