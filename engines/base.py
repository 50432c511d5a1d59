"""The one engine interface every backend fills in, and what opening one may ask for."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from polyp_rt.engines.contract import ModelContract

if TYPE_CHECKING:
    import torch


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
        return self._logits


class Engine(ABC):
    """Runs the segmentation model: float32 [N,3,H,W] normalised RGB in, float32 logits [N,1,H,W] out.

    A backend is one subclass in engines/backends/ plus one line in the registry. The class
    says which files it opens and what it can do; `open` builds it from a file, and the
    constructor sets the instance attributes below. An engine is a context manager;
    `close()` is idempotent.
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
        return (self.batch_size, 3, self.contract.height, self.contract.width)

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    @abstractmethod
    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Logits for a float32 batch shaped like `input_shape` (any N the engine supports)."""

    def submit(self, batch: np.ndarray) -> Pending:
        """Start inference on `batch` and return at once; the result's `wait()` gives the logits.

        Up to `requests` may be under way at once, each waited for in the order submitted, so the
        caller prepares the next batch while the runtime works. This default runs `infer` at once:
        a backend opened with more than one request overrides it.
        """
        return Pending(self.infer(batch))

    def infer_device(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits on the engine's GPU for a batch already there (engines with `device_tensors`)."""
        raise NotImplementedError(f"the {self.name} backend takes numpy batches only")

    @abstractmethod
    def _release(self) -> None:
        """Free sessions, contexts and device memory."""

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._release()

    def describe(self) -> dict[str, object]:
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

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
