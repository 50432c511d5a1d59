"""The checkpoint file: weights, the model contract (which holds the architecture) and provenance.

Saved with torch.save and loaded with `weights_only=True`, so a checkpoint can hold
tensors and plain data only.
"""

from __future__ import annotations

import hashlib
import pickle
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polyp_rt.core.errors import ModelError, PolypRtError
from polyp_rt.engines.contract import ModelContract, model_file
from polyp_rt.engines.models import ModelConfig, config_from_contract, create_model
from polyp_rt.engines.torch_files import inspect_torch_file

if TYPE_CHECKING:
    import torch

CHECKPOINT_FORMAT = "polyp-rt-checkpoint/2"
READABLE_FORMATS = ("polyp-rt-checkpoint/1", CHECKPOINT_FORMAT)  # /1 also stored the architecture apart


TRAINED = "use a checkpoint written by `polyp-rt train`"


def sha256_file(path: str | Path) -> str:
    """The file's SHA-256, hex."""
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
    """A loaded checkpoint: its weights, contract, the architecture that contract names, and the rest."""

    path: Path
    config: ModelConfig
    contract: ModelContract
    state_dict: dict[str, Any]
    provenance: dict[str, Any]
    extra: dict[str, Any]

    def build_model(self) -> torch.nn.Module:
        """The UNet++ the contract names with these weights, in eval mode (on the CPU)."""
        try:
            model = create_model(self.config)
        except PolypRtError as exc:  # an encoder this segmentation-models-pytorch does not know
            raise ModelError(f"{self.path}: {exc}") from exc
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as exc:
            raise ModelError(
                f"{self.path}: weights do not fit the {self.config.encoder} UNet++ it names "
                f"({str(exc).splitlines()[0]})"
            ) from exc
        return model.eval()


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint with `weights_only=True`; ModelError naming the file and why it was refused."""
    import torch

    path = model_file(path, "checkpoint")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before it refuses them
            warnings.filterwarnings("ignore", "Detected pickle protocol")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # torch refused it: say what it is, not what torch said
        raise ModelError(refusal(path)) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        found = inspect_torch_file(path)
        if found.archive and not found.is_pickle:  # an intact zip, but not torch's
            raise ModelError(refusal(path)) from exc
        raise ModelError(
            f"{path}: not a readable torch checkpoint ({str(exc).strip().splitlines()[0][:160]}); "
            "is the file complete?"
        ) from exc
    if not isinstance(data, dict) or data.get("format") not in READABLE_FORMATS:
        raise ModelError(
            f"{path}: not a polyp-rt checkpoint (no '{CHECKPOINT_FORMAT}' format tag); {TRAINED}"
        )
    state = _weights(path, data.get("state_dict"))
    if "contract" not in data:
        raise ModelError(f"{path}: a polyp-rt checkpoint without its model contract; {TRAINED}")
    contract = ModelContract.from_dict(data["contract"], str(path))
    if "tf_padding" in data.get("model", {}) and "tf_padding" not in data["contract"]:  # a /1 checkpoint
        contract = replace(contract, tf_padding=bool(data["model"]["tf_padding"]))
    try:
        config = config_from_contract(contract)
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from exc
    provenance = data.get("provenance")
    extra = {
        k: v for k, v in data.items() if k not in ("format", "state_dict", "model", "contract", "provenance")
    }
    return Checkpoint(
        path, config, contract, state, provenance if isinstance(provenance, dict) else {}, extra
    )


def _weights(path: Path, state: Any) -> dict[str, Any]:
    """The checkpoint's state_dict, refused unless it is tensors, all finite."""
    import torch

    if (
        not isinstance(state, dict)
        or not state
        or not all(isinstance(v, torch.Tensor) for v in state.values())
    ):
        raise ModelError(
            f"{path}: a polyp-rt checkpoint without its weights (no state_dict of tensors); {TRAINED}"
        )
    broken = [k for k, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if broken:
        raise ModelError(
            f"{path}: {len(broken)} of its {len(state)} weight tensors hold NaN or infinity (the first: "
            f"{broken[0]}), so the model's masks would be empty: the training run that wrote it diverged; "
            "use an earlier checkpoint, or train again (with a lower --lr)"
        )
    return state


def refusal(path: Path) -> str:
    """Why torch's weights-only loader refused `path`, from what the file is (nothing in it is run)."""
    found = inspect_torch_file(path)
    if found.archive and not found.is_pickle:
        return f"{path}: a zip archive, not a torch checkpoint (it holds no data.pkl); {TRAINED}"
    if not found.is_pickle:
        return (
            f"{path}: not a torch checkpoint (its bytes are neither torch's format nor a pickle); "
            f"is it the right file, and complete? {TRAINED}"
        )
    if found.code:
        shown = ", ".join(found.code[:3]) + (", ..." if len(found.code) > 3 else "")
        whole_model = (
            " (a whole torch.nn model, saved with torch.save(model)?)" if "torch.nn." in shown else ""
        )
        return (
            f"{path}: refused to load: {found.kind} whose pickle would call Python code beyond tensors "
            f"and plain data when loaded ({shown}){whole_model}; it was not run (torch weights_only=True); "
            "only load checkpoints written by `polyp-rt train`"
        )
    made = "not written by torch.save" if found.kind == "a plain Python pickle" else "damaged?"
    return f"{path}: {found.kind} that torch's weights-only loader cannot read ({made}); {TRAINED}"
