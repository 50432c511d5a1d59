"""`compose()`: the one place that builds the live pipeline's operators and wires them.

`polyp-rt run`, `bench --pipeline`, `batch` and the tests all get their pipeline here:

    source -> capture queue -> stage (preprocess, engine, postprocess) -> output queue
           -> overlay -> sinks (recording, masks, truth score, ...) and the window

or, in the passthrough display, every frame straight to the overlay and the sinks while the stage
takes the newest frame whenever it is free (realtime/pipeline.py, realtime/modes.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import ExitStack

from polyp_rt.core.errors import InputFileError, PolypRtError
from polyp_rt.core.options import out_of_range
from polyp_rt.engines.base import Engine
from polyp_rt.realtime.config import RunConfig
from polyp_rt.realtime.modes import Modes, requests_for, settle_modes
from polyp_rt.realtime.outputs import check_run_paths
from polyp_rt.realtime.overlay import Overlay
from polyp_rt.realtime.pipeline import Pipeline
from polyp_rt.realtime.sinks import Display, MaskWriter, RecordingSink, Sink, TruthScorer
from polyp_rt.realtime.sources import Source, open_source
from polyp_rt.realtime.stage import InferenceStage
from polyp_rt.realtime.stats import LatencyStats
from polyp_rt.realtime.style import OverlayStyle
from polyp_rt.realtime.threads import thread_plan

log = logging.getLogger(__name__)


def open_run_engine(config: RunConfig) -> Engine:
    """The engine a run of `config` infers with: its model (the bundled one for the device where it
    names none) on its backend and device, opened for the run's inference mode (its requests), with
    the thread plan's share of the cores. `run`, `bench --pipeline` and each video of `batch` open
    theirs here."""
    from polyp_rt.engines.registry import open_engine

    model = config.model_file
    if not model.is_file():
        raise InputFileError(
            f"{model}: model not found; pass --model with a .onnx, .engine or checkpoint .pt"
        )
    return open_engine(
        model,
        config.backend,
        config.device,
        fp16=config.fp16,
        cuda_graph=config.cuda_graph,
        threads=thread_plan(config.threads).runtime,
        requests=requests_for(config),
    )


def compose(
    config: RunConfig,
    engine: Engine,
    *,
    display: Display | None = None,
    extra_sinks: Sequence[Sink] = (),
    on_frame: Callable[[LatencyStats, str], None] | None = None,
) -> Pipeline:
    """The pipeline `config` describes around an open `engine`; close it (or use `with`) when done."""
    problem = out_of_range(config)
    if problem:
        raise PolypRtError(problem)
    if not config.source:
        raise PolypRtError("no --source given")
    check_run_paths(config)  # before anything is opened for writing
    modes = settle_modes(config, engine)
    overlay = Overlay(config.overlay)
    thread_plan(config.threads).apply()
    with ExitStack() as stack:  # on an error here, what was opened is closed again
        source = open_source(config.source, config.capture)
        source.open()
        stack.callback(source.close)
        if modes.passthrough and 1000 / source.fps > config.max_mask_age:
            log.warning(
                "%s: a frame every %.0f ms, longer than --max-mask-age %g ms: no mask would be young enough "
                "to draw on the next frame; raise --max-mask-age or use --display synced",
                source.description,
                1000 / source.fps,
                config.max_mask_age,
            )
        stage = make_stage(engine, config, overlay.style)
        stage.requests = modes.requests
        stack.callback(stage.close)
        sinks = [*make_sinks(config, source, stack, modes), *extra_sinks]
        for sink in extra_sinks:
            stack.callback(sink.close)
        pipeline = Pipeline(
            source,
            stage,
            overlay,
            sinks,
            config,
            display=display,
            label=engine.label,
            on_frame=on_frame,
            resources=stack.pop_all(),
            modes=modes,
        )
    return pipeline


def make_stage(engine: Engine, config: RunConfig, style: OverlayStyle) -> InferenceStage:
    """The GPU frame path for CUDA engines that take device tensors (drawing in the overlay's
    `style`), the CPU path otherwise."""
    if engine.is_cuda and engine.device_tensors and config.stages != "cpu":
        from polyp_rt.realtime.gpu_stage import TorchStage

        in_flight = 2 * config.queue_size + 4  # frames in the queues and in each thread's hands
        return TorchStage(engine, config.threshold, config.smoothing, style, in_flight)
    from polyp_rt.realtime.cpu_stage import CpuStage

    return CpuStage(engine, config.threshold, config.smoothing)


def make_sinks(config: RunConfig, source: Source, stack: ExitStack, modes: Modes) -> list[Sink]:
    """The sinks the flags ask for; each is closed by `stack` (the recording is always finalised)."""
    sinks: list[Sink] = []

    def add(sink: Sink) -> None:  # closed even when a later sink cannot be made
        stack.callback(sink.close)
        sinks.append(sink)

    if config.record:
        add(RecordingSink(config.record, source.width, source.height, source.fps))
    if config.masks_out:
        add(MaskWriter(config.masks_out, shown=modes.passthrough))
    if config.truth:
        add(TruthScorer(config.truth))
    return sinks
