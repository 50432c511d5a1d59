"""Model-only latency of an engine, as `polyp-rt bench` reports it (host wall time; CUDA events)."""

from __future__ import annotations

import time

import numpy as np

from polyp_rt.engines.base import Engine


def time_engine(
    engine: Engine, batch: np.ndarray, iterations: int, warmup: int
) -> tuple[list[float], dict[str, float]]:
    """Host latency samples (ms) of `engine.infer`, and the mean CUDA-event split where it can be taken."""
    for _ in range(warmup):
        engine.infer(batch)
    samples = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        engine.infer(batch)
        samples.append((time.perf_counter() - t0) * 1000.0)
    split = cuda_split(engine, batch, max(10, iterations // 4)) if engine.is_cuda else {}
    return samples, split


def cuda_split(engine: Engine, batch: np.ndarray, iterations: int) -> dict[str, float]:
    """Mean H2D, compute and D2H times (ms) from CUDA events, for engines that take device tensors."""
    if not engine.device_tensors:
        return {}
    import torch

    stream = engine.stream or torch.cuda.current_stream()
    host_in = torch.from_numpy(batch).pin_memory()
    totals = {"h2d": 0.0, "compute": 0.0, "d2h": 0.0}
    with torch.cuda.stream(stream):
        for _ in range(iterations):
            events = [torch.cuda.Event(enable_timing=True) for _ in range(4)]
            events[0].record()
            device_in = host_in.to(engine.device, non_blocking=True)
            events[1].record()
            logits = engine.infer_device(device_in)
            events[2].record()
            logits.to("cpu", non_blocking=True)
            events[3].record()
            events[3].synchronize()
            for key, (a, b) in zip(totals, zip(events, events[1:], strict=False), strict=True):
                totals[key] += a.elapsed_time(b)
    return {k: v / iterations for k, v in totals.items()}
