"""The one engine interface every backend fills in, and what opening one may ask for.

As Polygraphy's `BaseRunner.infer()` checks its inputs and calls `infer_impl()`, `Engine.infer()`
checks the batch against the model contract and calls the backend's own `_infer()`; a backend
fills in only what is its own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from polyp_rt.core.closing import Closing
from polyp_rt.core.errors import ModelError, PolypRtError
from polyp_rt.engines.contract import ModelContract

if TYPE_CHECKING:
    import torch


def canonical_device(device: str) -> str:
    """'cuda' -> 'cuda:0'; 'cpu' and 'cuda:N' as they are; PolypRtError for anything else."""
    if device == "cuda":
        return "cuda:0"
    if device == "cpu" or (device.startswith("cuda:") and device[5:].isdigit()):
        return device
    raise PolypRtError(f"--device {device!r}: use cpu, cuda or cuda:N")


@dataclass(frozen=True)
class OpenOptions:
    """What the caller asks of an engine; each backend refuses what it cannot do, in one sentence."""

    device: str = "cpu"  # "cpu" or "cuda:N", settled by the registry before a backend sees it
    variant: str = ""  # e.g. "cpu" for onnxruntime-cpu
    fp16: bool = False  # torch: run in FP16 (other files carry their precision)
    cuda_graph: bool = False
    batch_size: int = 1
    threads: int | None = None  # CPU runtimes: intra-op threads (None: the runtime's choice)
    requests: int = 1  # CPU runtimes: inference requests kept in flight (2: the throughput setting)


class Pending:
    """An inference request under way: `wait()` gives its logits. This one is already done."""

    def __init__(self, logits: np.ndarray) -> None:
        self._logits = logits

    def wait(self) -> np.ndarray:
        """The logits, [N,1,h,w] float32 (blocks until the request is done)."""
        return self._logits


class Engine(Closing, ABC):
    """Runs the segmentation model: float32 [N,3,H,W] normalised RGB in, float32 logits [N,1,H,W] out.

    A backend is one subclass in engines/backends/ plus one line in the registry. The class
    says which files it opens and what it can do; `open` builds it from a file, and the
    constructor sets the instance attributes below. `infer()` and `infer_device()` check
    the batch and call the backend's `_infer()` / `_infer_device()`. An engine is a context
    manager; `close()` is idempotent.
    """

    name: ClassVar[str]  # the backend's name on the command line
    suffixes: ClassVar[tuple[str, ...]]  # model files it opens
    variants: ClassVar[tuple[str, ...]] = ()  # `NAME-VARIANT` on the command line, e.g. onnxruntime-cpu
    fp16_option: ClassVar[bool] = False  # --fp16 picks the precision when opening (else it is in the file)
    cuda_graphs: ClassVar[bool] = False  # --cuda-graph
    device_tensors: ClassVar[bool] = False  # infer_device() takes and returns CUDA tensors

    device: str  # "cpu" or "cuda:N"
    provider: str  # what actually runs the graph, e.g. "CPUExecutionProvider"
    precision: str  # "fp32", "fp16" or "int8"
    contract: ModelContract
    batch_size: int = 1
    batch_sizes: tuple[int, int | None] = (1, None)  # the N `infer` takes: (least, most or None: any)
    requests: int = 1  # inference requests it keeps in flight (`submit`); more than 1: throughput
    stream: Any = None  # the CUDA stream it runs on, where it has one
    _closed: bool = False

    @classmethod
    @abstractmethod
    def read_contract(cls, path: Path) -> ModelContract:
        """The model contract stored in (or beside) a file this backend opens."""

    @classmethod
    @abstractmethod
    def open(cls, path: Path, options: OpenOptions) -> Engine:
        """An engine for `path`; BackendUnavailable or ModelError saying why not."""

    @classmethod
    def unavailable(cls, device: str) -> str | None:
        """Why this backend cannot run on `device` here (a missing package, no GPU), or None."""
        return None

    @classmethod
    def default_device(cls) -> str:
        """The device `auto` means for this backend: its GPU where it has one here, else the CPU."""
        return "cpu"

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """[batch_size, 3, H, W]: the batch this engine was opened for."""
        return (self.batch_size, 3, self.contract.height, self.contract.width)

    @property
    def is_cuda(self) -> bool:
        """Whether the engine runs on a CUDA device."""
        return self.device.startswith("cuda")

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Float32 logits [N,1,h,w] for a float batch [N,3,H,W] at the contract's input size.

        ModelError, in one line, for a batch of another shape or a non-float one.
        """
        if not np.issubdtype(batch.dtype, np.floating):
            raise ModelError(f"the {self.name} engine takes a float batch, not {batch.dtype}")
        self._check_batch(tuple(batch.shape))
        return self._infer(batch)

    def submit(self, batch: np.ndarray) -> Pending:
        """Start inference on `batch` and return at once; the result's `wait()` gives the logits.

        Up to `requests` may be under way at once, each waited for in the order submitted, so the
        caller prepares the next batch while the runtime works. This default runs `infer` at once:
        a backend opened with more than one request overrides it.
        """
        return Pending(self.infer(batch))

    def infer_device(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits on the engine's device for a batch already there (engines with `device_tensors`)."""
        if not self.device_tensors:
            raise NotImplementedError(f"the {self.name} backend takes numpy batches only")
        self._check_batch(tuple(batch.shape))
        return self._infer_device(batch)

    @abstractmethod
    def _infer(self, batch: np.ndarray) -> np.ndarray:
        """The backend's own inference of a batch `infer` has checked."""

    def _infer_device(self, batch: torch.Tensor) -> torch.Tensor:
        """The backend's own inference of a device batch `infer_device` has checked."""
        raise NotImplementedError(f"the {self.name} backend takes numpy batches only")

    def _check_batch(self, shape: tuple[int, ...]) -> None:
        c, (least, most) = self.contract, self.batch_sizes
        if (
            len(shape) != 4
            or shape[1:] != (3, c.height, c.width)
            or shape[0] < least
            or (most is not None and shape[0] > most)
        ):
            sizes = "any N" if most is None else f"N = {least}" if least == most else f"N {least} to {most}"
            raise ModelError(
                f"a batch of shape {list(shape)} does not fit this {self.name} engine: it takes "
                f"[N,3,{c.height},{c.width}] with {sizes}"
            )

    def probe(self, source: str) -> None:
        """Run one batch of the contract's mean colour; ModelError naming `source` unless the logits
        are [N,1,h,w] and finite. A model whose weights diverged to NaN fails here, when it is opened."""
        logits = self.infer(np.zeros(self.input_shape, np.float32))
        n = self.input_shape[0]
        if logits.ndim != 4 or logits.shape[:2] != (n, 1):
            raise ModelError(
                f"{source}: its output '{self.contract.output_name}' is {list(logits.shape)} for a batch "
                f"of {n}, not [{n},1,H,W] (one channel: the polyp logit); export the model with `polyp-rt export`"
            )
        if not np.isfinite(logits).all():
            raise ModelError(
                f"{source}: the model's logits are not finite (NaN or infinity) even on a plain frame, so "
                "its masks would be empty whatever it sees: its weights are broken (a training run that "
                "diverged?); use another checkpoint, or train again"
            )

    @abstractmethod
    def _release(self) -> None:
        """Free sessions, contexts and device memory."""

    def close(self) -> None:
        """Free what the engine holds; calling it again does nothing."""
        if not self._closed:
            self._closed = True
            self._release()

    def describe(self) -> dict[str, object]:
        """Backend, device, provider, precision and input shape, for tables and the stats JSON."""
        return {
            "backend": self.name,
            "device": self.device,
            "provider": self.provider,
            "precision": self.precision,
            "input_shape": list(self.input_shape),
            "requests": self.requests,
        }

    @property
    def label(self) -> str:
        """Short, for the HUD and table titles: backend, device and a precision other than FP32."""
        return f"{self.name} {self.device}" + (f" {self.precision}" if self.precision != "fp32" else "")
