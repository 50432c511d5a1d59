"""The checkpoint file: weights, the model contract (which holds the architecture) and provenance.

Saved with torch.save and loaded with `weights_only=True`, so a checkpoint can hold
tensors and plain data only.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polyp_rt.core.errors import InputFileError, ModelError
from polyp_rt.engines.contract import ModelContract
from polyp_rt.engines.models import ModelConfig, config_from_contract, create_model

if TYPE_CHECKING:
    import torch

CHECKPOINT_FORMAT = "polyp-rt-checkpoint/2"
READABLE_FORMATS = ("polyp-rt-checkpoint/1", CHECKPOINT_FORMAT)  # /1 also stored the architecture apart


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    contract: ModelContract,
    provenance: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint (atomically); `extra` holds resumable state (optimizer, scheduler, epoch)."""
    import torch

    path = Path(path)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "state_dict": state,
            "contract": contract.to_dict(),
            "provenance": provenance,
            **(extra or {}),
        },
        tmp,
    )
    tmp.replace(path)


@dataclass
class Checkpoint:
    path: Path
    config: ModelConfig
    contract: ModelContract
    state_dict: dict[str, Any]
    provenance: dict[str, Any]
    extra: dict[str, Any]

    def build_model(self) -> torch.nn.Module:
        model = create_model(self.config)
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as exc:
            raise ModelError(
                f"{self.path}: weights do not fit the {self.config.encoder} UNet++ it names "
                f"({str(exc).splitlines()[0]})"
            ) from exc
        return model.eval()


def load_checkpoint(path: str | Path) -> Checkpoint:
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: checkpoint not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):  # not objects torch refused: bytes it cannot read
            raise ModelError(
                f"{path}: not a torch checkpoint (its bytes are neither torch's format nor a pickle); "
                "is it the right file, and complete? use a checkpoint written by `polyp-rt train`"
            ) from exc
        raise ModelError(
            f"{path}: refused to load, it holds Python objects beyond tensors and plain data "
            "(torch weights_only=True); only load checkpoints written by `polyp-rt train`"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable torch checkpoint ({exc}); is the file complete?") from exc
    if not isinstance(data, dict) or data.get("format") not in READABLE_FORMATS:
        raise ModelError(
            f"{path}: not a polyp-rt checkpoint (no '{CHECKPOINT_FORMAT}' format tag); "
            "use a checkpoint written by `polyp-rt train`"
        )
    contract = ModelContract.from_dict(data["contract"], str(path))
    if "tf_padding" in data.get("model", {}) and "tf_padding" not in data["contract"]:  # a /1 checkpoint
        contract = replace(contract, tf_padding=bool(data["model"]["tf_padding"]))
    extra = {
        k: v for k, v in data.items() if k not in ("format", "state_dict", "model", "contract", "provenance")
    }
    config = config_from_contract(contract)
    return Checkpoint(path, config, contract, data["state_dict"], data["provenance"], extra)
