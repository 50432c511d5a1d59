"""The one engine interface every backend fills in."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType

import numpy as np

from polyp_rt.engines.contract import ModelContract


class Engine(ABC):
    """Runs the segmentation model: float32 [N,3,H,W] normalised RGB in, float32 logits [N,1,H,W] out.

    Subclasses set the attributes below in their constructor and implement
    `infer` and `_release`. An engine is a context manager; `close()` is idempotent.
    """

    name: str  # backend: "torch", "onnxruntime", "tensorrt"
    device: str  # "cpu" or "cuda:N"
    provider: str  # what actually runs the graph, e.g. "CPUExecutionProvider"
    precision: str  # "fp32" or "fp16"
    contract: ModelContract
    batch_size: int = 1
    _closed: bool = False

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch_size, 3, self.contract.height, self.contract.width)

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    @abstractmethod
    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Logits for a float32 batch shaped like `input_shape` (any N the engine supports)."""

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
        }

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
