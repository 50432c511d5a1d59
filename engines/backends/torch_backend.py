"""PyTorch backend: the checkpoint's model in eval mode; FP16 + channels_last + CUDA graph on GPU."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from polyp_rt.core.errors import BackendUnavailable
from polyp_rt.engines.base import Engine, OpenOptions, canonical_device
from polyp_rt.engines.contract import ModelContract

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


class TorchEngine(Engine):
    """A checkpoint's UNet++ in torch: eager, or FP16 with a CUDA graph on a GPU."""

    name = "torch"
    suffixes = (".pt", ".pth")
    fp16_option = True
    cuda_graphs = True
    device_tensors = True

    def __init__(
        self,
        model: torch.nn.Module,
        contract: ModelContract,
        device: str = "cpu",
        *,
        fp16: bool = False,
        cuda_graph: bool = False,
        batch_size: int = 1,
    ) -> None:
        import torch

        self.contract = contract
        self.device = canonical_device(device)
        self.batch_size = batch_size
        self._torch_device = torch.device(self.device)
        cuda = self._torch_device.type == "cuda"
        if (fp16 or cuda_graph) and not cuda:
            raise BackendUnavailable("--fp16 and --cuda-graph need a CUDA device for the torch backend")
        self.precision = "fp16" if fp16 else "fp32"
        self.provider = "torch CUDA graph" if cuda_graph else "torch eager"
        self._dtype = torch.float16 if fp16 else torch.float32
        model = model.eval().to(self._torch_device, dtype=self._dtype)
        if cuda:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.stream = torch.cuda.Stream(self._torch_device) if cuda else None
        self._graph: torch.cuda.CUDAGraph | None = None
        self._static_in: torch.Tensor | None = None
        self._static_out: torch.Tensor | None = None
        if cuda_graph:
            self._capture()

    @classmethod
    def read_contract(cls, path: Path) -> ModelContract:
        from polyp_rt.engines.checkpoint import load_checkpoint

        return load_checkpoint(path).contract

    @classmethod
    def unavailable(cls, device: str) -> str | None:
        try:
            import torch
        except ImportError:
            return 'the torch backend needs PyTorch: pip install "polyp-rt[train]"'
        if device.startswith("cuda") and not torch.cuda.is_available():
            return f"--device {device}: no CUDA GPU is visible to torch here; use --device cpu"
        return None

    @classmethod
    def default_device(cls) -> str:
        import torch

        return "cuda:0" if torch.cuda.is_available() else "cpu"

    @classmethod
    def open(cls, path: Path, options: OpenOptions) -> TorchEngine:
        from polyp_rt.engines.checkpoint import load_checkpoint

        checkpoint = load_checkpoint(path)
        return cls(
            checkpoint.build_model(),
            checkpoint.contract,
            options.device,
            fp16=options.fp16,
            cuda_graph=options.cuda_graph,
            batch_size=options.batch_size,
        )

    @classmethod
    def from_contract(cls, contract: ModelContract, options: OpenOptions) -> TorchEngine:
        """The contract's architecture with random weights: for timing an ONNX or engine's model in torch."""
        from polyp_rt.engines.models import config_from_contract, create_model

        engine = cls(
            create_model(config_from_contract(contract)),
            contract,
            options.device,
            fp16=options.fp16,
            cuda_graph=options.cuda_graph,
            batch_size=options.batch_size,
        )
        engine.provider += " (random weights)"
        return engine

    def _infer_device(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits for a batch already on this engine's device (any float dtype); same device out."""
        import torch

        with torch.inference_mode():
            graph, static_in, static_out = self._graph, self._static_in, self._static_out
            if (
                graph is not None
                and static_in is not None
                and static_out is not None
                and batch.shape == static_in.shape
            ):
                static_in.copy_(batch)
                graph.replay()
                return static_out
            x = batch.to(self._dtype)
            if self._torch_device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            return self.model(x)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(batch, np.float32))
        if self._torch_device.type != "cuda":
            return self._infer_device(x).float().numpy()
        assert self.stream is not None
        with torch.cuda.stream(self.stream):
            logits = self._infer_device(x.pin_memory().to(self._torch_device, non_blocking=True))
            out = logits.float().cpu()
        return out.numpy()

    def _capture(self) -> None:
        import torch

        assert self.stream is not None
        static_in = torch.zeros(self.input_shape, device=self._torch_device, dtype=self._dtype)
        static_in = static_in.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.cuda.stream(self.stream):
            for _ in range(3):  # warm up kernels and cuDNN autotuning outside the graph
                self.model(static_in)
            self.stream.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=self.stream):
                static_out = self.model(static_in)
        self._graph, self._static_in, self._static_out = graph, static_in, static_out
        log.info("captured a CUDA graph for input %s", tuple(static_in.shape))

    def _release(self) -> None:
        self._graph = self._static_in = self._static_out = None
        self.model = None  # type: ignore[assignment]
        if self._torch_device.type == "cuda":
            import torch

            torch.cuda.empty_cache()
