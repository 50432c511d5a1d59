"""The registry of backends: the one way to open a model file, read its contract or list backends.

A backend is a module in engines/backends/ with one Engine subclass, plus one line here.
The order is the order of preference for `--backend auto`: among the installed backends
that open the file's kind and run on the device, the first wins. On a CPU that makes
OpenVINO run an .onnx file where it is installed (it measured fastest there), else
ONNX Runtime.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from polyp_rt.core.errors import BackendUnavailable, PolypRtError
from polyp_rt.engines.base import Engine, OpenOptions, canonical_device
from polyp_rt.engines.contract import ModelContract, model_file

REGISTRY: dict[str, str] = {
    "tensorrt": "polyp_rt.engines.backends.tensorrt_backend:TensorRTEngine",
    "torch": "polyp_rt.engines.backends.torch_backend:TorchEngine",
    "openvino": "polyp_rt.engines.backends.openvino_backend:OpenVinoEngine",
    "onnxruntime": "polyp_rt.engines.backends.onnxruntime_backend:OnnxRuntimeEngine",
}


def backend_class(name: str) -> type[Engine]:
    """The Engine subclass registered as `name` (its module is imported now)."""
    module, attribute = REGISTRY[name].split(":")
    cls: type[Engine] = getattr(importlib.import_module(module), attribute)
    return cls


def backends() -> list[type[Engine]]:
    """Every backend, in the order of preference."""
    return [backend_class(name) for name in REGISTRY]


def backend_names() -> list[str]:
    """What --backend accepts: auto, each backend, and each NAME-VARIANT."""
    names = ["auto"]
    for cls in backends():
        names += [cls.name, *(f"{cls.name}-{v}" for v in cls.variants)]
    return names


def parse_backend(text: str) -> tuple[type[Engine], str]:
    """'onnxruntime-cpu' -> (OnnxRuntimeEngine, 'cpu'); PolypRtError listing the names otherwise."""
    name, _, variant = text.partition("-")
    if name in REGISTRY:
        cls = backend_class(name)
        if not variant or variant in cls.variants:
            return cls, variant
    raise PolypRtError(f"unknown backend {text!r}; choose one of: {', '.join(backend_names())}")


def suffix_of(path: Path) -> str:
    """The file's suffix in lower case: what picks the backends that open it."""
    return path.suffix.lower()


def readers(path: Path) -> list[type[Engine]]:
    """The backends that open this kind of file; PolypRtError naming the kinds if there is none."""
    found = [cls for cls in backends() if suffix_of(path) in cls.suffixes]
    if not found:
        kinds = ", ".join(sorted({s for cls in backends() for s in cls.suffixes}))
        raise PolypRtError(
            f"{path}: unknown model type {path.suffix or '(no suffix)'!r}; pass one of: {kinds} "
            "(a checkpoint, an ONNX file or a TensorRT engine)"
        )
    return found


def read_contract(path: str | Path) -> ModelContract:
    """The model contract of any model file: checkpoint, ONNX metadata or engine sidecar."""
    path = model_file(path)
    return readers(path)[0].read_contract(path)


def choose(path: Path, backend: str = "auto", device: str | None = None) -> tuple[type[Engine], str]:
    """(backend class, variant) that will open `path`: the one asked for, or the preferred one here."""
    if backend != "auto":
        cls, variant = parse_backend(backend)
        if suffix_of(path) not in cls.suffixes:
            others = ", ".join(c.name for c in readers(path))
            raise PolypRtError(
                f"{path}: the {backend} backend cannot run a {path.suffix} file; it runs "
                f"{', '.join(cls.suffixes)} files, and {others} runs this one "
                "(`polyp-rt export` makes .onnx from a checkpoint, `polyp-rt build` makes .engine from .onnx)"
            )
        return cls, variant
    candidates = readers(path)
    for cls in candidates:
        if cls.unavailable(device or cls.default_device()) is None:
            return cls, ""
    return candidates[-1], ""  # let it say itself why it cannot run


def settle_device(device: str | None, cls: type[Engine]) -> str:
    """None -> the backend's default; 'cuda' -> 'cuda:0'; PolypRtError for anything but cpu and cuda[:N]."""
    return cls.default_device() if device is None else canonical_device(device)


def open_engine(
    path: str | Path,
    backend: str = "auto",
    device: str | None = None,
    *,
    fp16: bool = False,
    cuda_graph: bool = False,
    batch_size: int = 1,
    threads: int | None = None,
    requests: int = 1,
) -> Engine:
    """Open `path` with `backend` ("auto": the preferred installed one) on `device` (default: its GPU if any).

    `requests` > 1 asks a CPU runtime for its throughput setting with that many requests in flight
    (`Engine.submit`); backends without one keep a single request (`engine.requests` says).

    The engine has run one probe batch: a model whose graph disagrees with its contract, or whose
    logits are not finite, is refused here with one line (ModelError), before any frame is read.
    """
    path = model_file(path)
    cls, variant = choose(path, backend, device)
    device = settle_device(device, cls)
    if fp16 and not cls.fp16_option:
        raise PolypRtError(
            f"{path}: --fp16 is for the torch backend; a {path.suffix} file's precision is set when it "
            "is made (`polyp-rt export --fp16`, `polyp-rt build --fp16`)"
        )
    if cuda_graph and not cls.cuda_graphs:
        graphs = " and ".join(c.name for c in backends() if c.cuda_graphs)
        raise PolypRtError(f"{path}: --cuda-graph is for the {graphs} backends, not {cls.name}")
    reason = cls.unavailable(device)
    if reason:
        raise BackendUnavailable(reason)
    engine = cls.open(path, OpenOptions(device, variant, fp16, cuda_graph, batch_size, threads, requests))
    try:
        engine.probe(str(path))
    except BaseException:
        engine.close()
        raise
    return engine
