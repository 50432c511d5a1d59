"""The inference stage in torch ops on the engine's device: the GPU frame path.

For a CUDA engine the frame crosses the bus twice: one H2D of the uint8 frame
(from pinned memory, started by the capture thread on an upload stream so it
overlaps the previous frame's compute) and one D2H of the composed frame, its
mask and two numbers (peak probability, mask area). Resize, normalisation, the
model, upsampling, thresholding, temporal smoothing, the tint and the outline all
run on the GPU. CUDA events time each step.

Sources that can write a frame where they are told (camera, image folder, synthetic)
decode straight into the pinned ring (`frame_buffer`), so the capture thread only
starts the upload; other frames are copied into the ring first.

The same code runs on CPU tensors, which is how it is tested without a GPU.
"""

from __future__ import annotations

import threading
import weakref
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from polyp_rt.engines.base import Engine
from polyp_rt.engines.imaging import logit
from polyp_rt.realtime.config import OverlayConfig
from polyp_rt.realtime.frame import GPU_STEPS, Frame, Stamp
from polyp_rt.realtime.stage import BOUND, InferenceStage
from polyp_rt.realtime.style import OverlayStyle, outline_width


@dataclass
class Upload:
    """A frame already on its way to the device: its device buffer and the event that marks arrival."""

    rgb: torch.Tensor  # uint8 HxWx3 on the device, a slot of the pool that was current at upload
    ready: Any  # torch.cuda.Event


class SlotPool:
    """Pinned host + device frame buffers, each owned by one frame at a time."""

    def __init__(self, count: int, shape: tuple[int, ...], device: torch.device) -> None:
        self.host = [torch.empty(shape, dtype=torch.uint8).pin_memory() for _ in range(count)]
        self.device = [torch.empty(shape, dtype=torch.uint8, device=device) for _ in range(count)]
        self._addresses = {t.data_ptr(): i for i, t in enumerate(self.host)}
        self._free = list(range(count))
        self._lock = threading.Lock()

    def slot_of(self, array: np.ndarray) -> int | None:
        """The slot whose pinned buffer `array` is (a frame decoded straight into the ring)."""
        if array.shape != tuple(self.host[0].shape) or not array.flags.c_contiguous:
            return None
        return self._addresses.get(array.__array_interface__["data"][0])

    def take(self) -> int | None:
        with self._lock:
            return self._free.pop() if self._free else None

    def give_back(self, slot: int) -> None:
        with self._lock:
            self._free.append(slot)


class TorchStage(InferenceStage):
    """Pre- and postprocessing in torch on the engine's device; the tint and outline drawn in
    `style` (the overlay's own, so its toggles reach here), `in_flight` frames of buffers."""

    def __init__(
        self,
        engine: Engine,
        threshold: float | None = None,
        smoothing: float = 0.0,
        style: OverlayStyle | None = None,
        in_flight: int = 6,
    ) -> None:
        super().__init__(engine, threshold, smoothing)
        if not engine.device_tensors:
            raise TypeError(f"{engine.name} engines take numpy batches only; use CpuStage")
        self._infer_device = engine.infer_device
        self.device = torch.device(engine.device)
        self.cuda = self.device.type == "cuda"
        self.stream = engine.stream if self.cuda else None
        if self.cuda and self.stream is None:
            self.stream = torch.cuda.Stream(self.device)
        self.upload_stream = torch.cuda.Stream(self.device) if self.cuda else None
        c = engine.contract
        self.size = (c.height, c.width)
        self.mean = torch.tensor(c.mean, device=self.device).view(1, 3, 1, 1) * 255.0
        self.std = torch.tensor(c.std, device=self.device).view(1, 3, 1, 1) * 255.0
        self.cutoff = float(logit(self.threshold))
        self.style = style or OverlayStyle.from_config(OverlayConfig())
        self.color = torch.tensor(self.style.color, dtype=torch.float32, device=self.device)
        self.in_flight = in_flight
        self._pool: SlotPool | None = None
        self._outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._next_output = 0
        self._previous: torch.Tensor | None = None
        self._area: tuple[tuple[int, int], torch.Tensor, torch.Tensor] | None = None

    # -------------------------------------------------------- capture thread

    def frame_buffer(self, height: int, width: int) -> np.ndarray | None:
        """A free pinned buffer of the ring for the source to decode the next frame into.

        The slot is the frame's while this array (or a view of it) lives."""
        if not self.cuda:
            return None
        pool = self._pool_for((height, width, 3))
        slot = pool.take()
        if slot is None:
            return None
        array = pool.host[slot].numpy()
        weakref.finalize(array, pool.give_back, slot)
        return array

    def prepare(self, frame: Frame) -> None:
        """Start the frame's H2D now (capture thread), so it overlaps the frame being computed."""
        if not self.cuda:
            return
        pool = self._pool_for(frame.rgb.shape)
        slot = pool.slot_of(frame.rgb)
        if slot is None:
            slot = pool.take()
            if slot is None:
                return  # every slot in use: __call__ uploads this frame itself
            np.copyto(pool.host[slot].numpy(), frame.rgb)
            weakref.finalize(frame, pool.give_back, slot)  # a dropped frame frees its slot too
        assert self.upload_stream is not None
        ready = torch.cuda.Event()
        with torch.cuda.stream(self.upload_stream):
            pool.device[slot].copy_(pool.host[slot], non_blocking=True)
            ready.record()
        frame.upload = Upload(pool.device[slot], ready)

    def warm_up(self, height: int, width: int) -> None:
        """Allocate the buffers for this frame size and run one frame, so the first real one is not slow."""
        frame = Frame(-1, 0.0, 0, np.zeros((height, width, 3), np.uint8))
        self.prepare(frame)
        self(frame)
        self._previous = None

    # -------------------------------------------------------- inference thread

    def __call__(self, frame: Frame) -> Frame:
        h, w = frame.rgb.shape[:2]
        events = [self._event() for _ in range(4)] if self.cuda else []
        context = torch.cuda.stream(self.stream) if self.cuda else nullcontext()
        with torch.inference_mode(), context:
            self._record(events, 0)
            rgb = self._on_device(frame)
            x = self.preprocess(rgb)
            frame.stamp(Stamp.PREPROCESSED)
            self._record(events, 1)
            logits = self._infer_device(x)
            frame.stamp(Stamp.INFERRED)
            self._record(events, 2)
            outline = self.style.contours
            nonfinite = torch.isfinite(logits).logical_not().any().reshape(1)  # read with the numbers
            mask, blended, numbers = self.postprocess(logits, rgb, outline)
            host_mask, host_blend, host_numbers = self._output_buffers(h, w)
            host_mask.copy_(mask, non_blocking=self.cuda)
            host_blend.copy_(blended, non_blocking=self.cuda)
            host_numbers.copy_(torch.cat([numbers, nonfinite.float()]), non_blocking=self.cuda)
            self._record(events, 3)
        if self.cuda:
            events[3].synchronize()
            frame.gpu_ms = {step: events[i].elapsed_time(events[i + 1]) for i, step in enumerate(GPU_STEPS)}
        frame.mask, frame.blended, frame.outlined = host_mask.numpy(), host_blend.numpy(), outline
        peak, area, nonfinite_flag = host_numbers.tolist()
        frame.max_prob, frame.area = peak, area
        if nonfinite_flag:
            self._nonfinite(frame)
        frame.stamp(Stamp.POSTPROCESSED)
        return frame

    def preprocess(self, rgb: torch.Tensor) -> torch.Tensor:
        """uint8 HxWx3 on the device -> normalised float [1,3,h,w] at model size.

        Shrinking uses pixel-area weights as two matrix products, which is OpenCV's
        INTER_AREA (what training and the CPU path use), rounded to whole levels as
        a uint8 resize would; enlarging is bilinear, as OpenCV's INTER_LINEAR.
        """
        x = rgb.permute(2, 0, 1).float()
        (frame_h, frame_w), (h, w) = x.shape[-2:], self.size
        if (frame_h, frame_w) != (h, w):
            if frame_h >= h and frame_w >= w:
                rows, cols = self._area_weights(frame_h, frame_w)
                x = torch.round(rows @ x @ cols)
            else:
                x = F.interpolate(x[None], size=self.size, mode="bilinear", align_corners=False)[0].round()
        return ((x - self.mean[0]) / self.std[0]).unsqueeze(0)

    def _area_weights(self, frame_h: int, frame_w: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._area is None or self._area[0] != (frame_h, frame_w):
            h, w = self.size
            rows = torch.from_numpy(area_matrix(frame_h, h)).to(self.device)
            cols = torch.from_numpy(area_matrix(frame_w, w)).to(self.device).T.contiguous()
            self._area = ((frame_h, frame_w), rows, cols)
        return self._area[1], self._area[2]

    def postprocess(
        self, logits: torch.Tensor, rgb: torch.Tensor, outline: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits at model size -> (uint8 {0,1} mask HxW, tinted (and outlined) uint8 frame HxWx3,
        [max probability, fraction of the frame the mask covers]). NaN and infinite logits count as
        background (NaN, -inf) or as polyp (+inf)."""
        logits = torch.nan_to_num(logits.float(), nan=-BOUND, posinf=BOUND, neginf=-BOUND)
        if self.smoothing > 0:
            prob = torch.sigmoid(logits)
            if self._previous is not None:
                prob = self.smoothing * self._previous + (1 - self.smoothing) * prob
            self._previous = prob
            logits = torch.logit(prob.clamp(1e-6, 1 - 1e-6))
        peak = torch.sigmoid(logits.amax()).reshape(1)
        h, w = rgb.shape[:2]
        if logits.shape[-2:] != (h, w):
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        mask = logits[0, 0] >= self.cutoff
        alpha = self.style.alpha
        tinted = (rgb.float() * (1 - alpha) + self.color * alpha).round_().to(torch.uint8)
        blended = torch.where(mask.unsqueeze(-1), tinted, rgb)
        if outline:
            edge = outline_band(mask, outline_width(h))
            blended = torch.where(edge.unsqueeze(-1), self.color.to(torch.uint8), blended)
        area = mask.sum(dtype=torch.float32).reshape(1) / mask.numel()
        return mask.to(torch.uint8), blended, torch.cat([peak, area])

    # -------------------------------------------------------- buffers

    def _on_device(self, frame: Frame) -> torch.Tensor:
        upload: Upload | None = frame.upload
        if upload is not None:  # its pool may have been replaced since (the frame size changed)
            torch.cuda.current_stream(self.device).wait_event(upload.ready)
            return upload.rgb
        host = torch.from_numpy(frame.rgb)
        return host.pin_memory().to(self.device, non_blocking=True) if self.cuda else host

    def _pool_for(self, shape: tuple[int, ...]) -> SlotPool:
        if self._pool is None or tuple(self._pool.host[0].shape) != shape:
            self._pool = SlotPool(self.in_flight, shape, self.device)
        return self._pool

    def _output_buffers(self, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A ring of host buffers: a frame's outputs stay valid while `in_flight` newer frames pass."""
        if not self._outputs or tuple(self._outputs[0][0].shape) != (h, w):
            pin = self.cuda
            self._outputs = [
                (_empty((h, w), pin), _empty((h, w, 3), pin), _empty((3,), pin, torch.float32))
                for _ in range(self.in_flight)
            ]
        out = self._outputs[self._next_output]
        self._next_output = (self._next_output + 1) % len(self._outputs)
        return out

    def _event(self) -> Any:
        return torch.cuda.Event(enable_timing=True)

    @staticmethod
    def _record(events: list[Any], i: int) -> None:
        if events:
            events[i].record()

    def close(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)
        self._pool, self._outputs, self._previous, self._area = None, [], None, None


def outline_band(mask: torch.Tensor, width: int) -> torch.Tensor:
    """Pixels within about width/2 of the mask's edge, on either side: a drawn outline, by two
    max-pools (dilation and erosion) over the bool HxW mask."""
    radius = max(1, width // 2)
    m = mask.to(torch.float16 if mask.is_cuda else torch.float32)[None, None]
    grown = F.max_pool2d(m, 2 * radius + 1, stride=1, padding=radius)
    shrunk = -F.max_pool2d(-m, 2 * radius + 1, stride=1, padding=radius)
    return (grown > shrunk)[0, 0]


def area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Weights [n_out, n_in] that average the input pixels each output pixel covers."""
    scale = n_in / n_out
    start = np.arange(n_out)[:, None] * scale
    j = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(start + scale, j + 1) - np.maximum(start, j), 0, None)
    return (overlap / scale).astype(np.float32)


def _empty(shape: tuple[int, ...], pinned: bool, dtype: torch.dtype = torch.uint8) -> torch.Tensor:
    tensor = torch.empty(shape, dtype=dtype)
    return tensor.pin_memory() if pinned else tensor
