"""Checkpoint refusals say what the file is and why, naming it; nothing in a pickle ever runs.
Real torch files: torch.save in both of its formats, plain pickles, a real UNet++ checkpoint."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from polyp_rt.core.errors import ModelError
from polyp_rt.engines.checkpoint import load_checkpoint
from polyp_rt.engines.torch_files import TorchFile, inspect_torch_file
from tests.conftest import write_checkpoint


class Shell:
    """Unpickling this would run `touch MARKER` through posix.system."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class Opener:
    """Unpickling this would create MARKER through open (pickled as io.open)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def written(kind: str, payload: object, path: Path) -> Path:
    data = {"format": "polyp-rt-checkpoint/2", "payload": payload}
    if kind == "zip":
        torch.save(data, path)
    elif kind == "older":
        torch.save(data, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(data, protocol=int(kind[-1])))
    return path


KINDS = {
    "zip": "a file in torch's zip format",
    "older": "a file in torch's older format",
    "pickle2": "a plain Python pickle",
    "pickle4": "a plain Python pickle",
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("payload", "callable_name"), [(Shell, "posix.system"), (Opener, "io.open")])
def test_a_pickle_that_carries_code_is_named_and_never_run(tmp_path, kind, payload, callable_name):
    marker = tmp_path / "ran"
    path = written(kind, payload(marker), tmp_path / "evil.pt")
    assert inspect_torch_file(path).kind == KINDS[kind] and inspect_torch_file(path).code == (callable_name,)
    with pytest.raises(ModelError) as info:
        load_checkpoint(path)
    assert str(info.value) == (
        f"{path}: refused to load: {KINDS[kind]} whose pickle would call Python code beyond tensors and "
        f"plain data when loaded ({callable_name}); it was not run (torch weights_only=True); only load "
        "checkpoints written by `polyp-rt train`"
    )
    assert not marker.exists()


def test_a_whole_pickled_model_is_called_one(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(torch.nn.Conv2d(3, 1, 3), path)
    with pytest.raises(ModelError) as info:
        load_checkpoint(path)
    assert "(torch.nn.modules.conv.Conv2d) (a whole torch.nn model, saved with torch.save(model)?)" in str(
        info.value
    )


def test_what_torch_cannot_read_is_called_what_it_is(tmp_path):
    harmless = tmp_path / "dict.pt"
    harmless.write_bytes(pickle.dumps({"weights": [1.0]}, protocol=4))
    with pytest.raises(ModelError, match=r"dict\.pt: a plain Python pickle that torch's weights-only loader"):
        load_checkpoint(harmless)
    noise = tmp_path / "noise.pt"
    noise.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(ModelError, match=r"noise\.pt: not a torch checkpoint \(its bytes are neither"):
        load_checkpoint(noise)
    archive = tmp_path / "archive.pt"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("notes.txt", "not a model")
    with pytest.raises(
        ModelError, match=r"archive\.pt: a zip archive, not a torch checkpoint \(it holds no data\.pkl\)"
    ):
        load_checkpoint(archive)


def test_a_real_checkpoint_loads_and_its_own_pickle_names_only_torch(tmp_path):
    path = write_checkpoint(tmp_path / "good.pt")
    assert inspect_torch_file(path) == TorchFile("a file in torch's zip format", (), archive=True)
    checkpoint = load_checkpoint(path)
    assert checkpoint.contract.size == (64, 64) and checkpoint.provenance == {"data": "data"}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d.pop("state_dict"), "a polyp-rt checkpoint without its weights"),
        (lambda d: d.update(state_dict={"w": [1.0]}), "a polyp-rt checkpoint without its weights"),
        (lambda d: d.pop("contract"), "a polyp-rt checkpoint without its model contract"),
        (
            lambda d: d["contract"].update(std=[0.2, 0.0, 0.2]),
            "its model contract field 'std' is [0.2, 0.0, 0.2]",
        ),
        (lambda d: d["contract"].update(height=100000), "its model contract field 'height' is 100000"),
        (lambda d: d["contract"].update(decoder_channels=[]), "does not name its encoder and decoder"),
        (lambda d: d["contract"].update(encoder="no-such-encoder"), "unknown encoder 'no-such-encoder'"),
        (lambda d: d.pop("provenance"), None),  # provenance is for people: a checkpoint without it loads
    ],
)
def test_every_checkpoint_error_names_its_file(tmp_path, change, words):
    path = write_checkpoint(tmp_path / "changed.pt", change)
    if words is None:
        assert load_checkpoint(path).provenance == {}
        return
    with pytest.raises(ModelError) as info:
        load_checkpoint(path).build_model()
    assert str(info.value).startswith(f"{path}: ") and words in str(info.value)


def test_a_checkpoint_whose_weights_diverged_is_refused(tmp_path):
    path = write_checkpoint(tmp_path / "diverged.pt", nan=True)
    tensors = len(torch.load(path, weights_only=True)["state_dict"])
    with pytest.raises(ModelError) as info:
        load_checkpoint(path)
    assert str(info.value).startswith(
        f"{path}: 1 of its {tensors} weight tensors hold NaN or infinity (the first: segmentation_head.0.weight)"
    )
