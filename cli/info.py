"""`polyp-rt info`: versions, devices and backends here; a model file's contract."""

from __future__ import annotations

import os
import platform
from importlib import import_module
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from polyp_rt.cli.config import InfoConfig
from polyp_rt.core.files import to_json
from polyp_rt.realtime.stats_file import package_versions

console = Console()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)),
        "os": platform.platform(),
    }
    torch = optional("torch")  # the light install has none: CUDA devices are then not listed
    info["cuda_devices"] = [
        {
            "index": i,
            "name": torch.cuda.get_device_name(i),
            "capability": ".".join(map(str, torch.cuda.get_device_capability(i))),
        }
        for i in range(torch.cuda.device_count() if torch else 0)
    ]
    info["cuda_runtime"] = torch.version.cuda if torch else None
    ort, av = optional("onnxruntime"), optional("av")
    info["onnxruntime_providers"] = ort.get_available_providers() if ort else []
    info["ffmpeg"] = {
        k: ".".join(map(str, v))
        for k, v in (av.library_versions.items() if av else ())
        if k in ("libavcodec", "libavformat")
    }
    return info


def optional(module: str) -> Any:
    """The module, or None where it is not installed (info still answers on a partial install)."""
    try:
        return import_module(module)
    except ImportError:
        return None


def describe_model(path: Path) -> dict[str, Any]:
    from polyp_rt.engines.registry import choose, read_contract

    contract = read_contract(path)
    return {
        "path": str(path),
        "auto_backend": choose(path)[0].name,
        "bytes": path.stat().st_size,
        "contract": contract.to_dict(),
    }


def backend_status() -> dict[str, str]:
    """Each backend: where it runs here, or why it does not."""
    from polyp_rt.engines.registry import backends

    status = {}
    for cls in backends():
        runs = [device for device in ("cpu", "cuda:0") if cls.unavailable(device) is None]
        status[cls.name] = (
            f"runs on {' and '.join(runs)} ({', '.join(cls.suffixes)})"
            if runs
            else str(cls.unavailable("cpu"))
        )
    return status


def info_command(config: InfoConfig) -> int:
    from polyp_rt.core.errors import InputFileError

    result: dict[str, Any] = {
        "versions": package_versions(),
        "machine": machine(),
        "backends": backend_status(),
    }
    if config.model:
        if not config.model.is_file():
            raise InputFileError(f"{config.model}: model file not found")
        result["model"] = describe_model(config.model)
    if config.json:
        print(to_json(result, indent=1))
        return 0
    table = Table(title="polyp-rt info", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for name, version in result["versions"].items():
        table.add_row(name, version)
    m = result["machine"]
    table.add_row("CPU", f"{m['cpu']} ({m['cores']} cores)")
    table.add_row(
        "CUDA devices",
        ", ".join(f"{d['index']}: {d['name']} (sm {d['capability']})" for d in m["cuda_devices"]) or "none",
    )
    table.add_row("ONNX Runtime providers", ", ".join(m["onnxruntime_providers"]))
    for name, status in result["backends"].items():
        table.add_row(f"backend {name}", status)
    table.add_row(
        "FFmpeg (PyAV)", ", ".join(f"{k} {v}" for k, v in m["ffmpeg"].items()) or "av not installed"
    )
    if config.model:
        model = result["model"]
        c = model["contract"]
        table.add_row(
            "model", f"{model['path']} ({model['bytes'] / 1e6:.1f} MB), auto backend: {model['auto_backend']}"
        )
        table.add_row(
            "contract",
            f"{c['input_name']} [N,3,{c['height']},{c['width']}] {c['color']} mean {c['mean']} std {c['std']} -> {c['output_name']} [N,1,H,W], threshold {c['threshold']}",
        )
        table.add_row(
            "architecture",
            f"UNet++ {c['encoder']} ({c['preset'] or 'custom'}), decoder {c['decoder_channels']}",
        )
    console.print(table)
    return 0
