"""scripts/checkpoint_from_onnx.py: an exported model's batch norms are folded into its
convolutions; the rebuilt checkpoint must compute what the checkpoint it was exported from does."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from polyp_rt.engines.checkpoint import load_checkpoint
from polyp_rt.engines.imaging import preprocess
from polyp_rt.train.data import read_rgb
from tests.scripts import load_script


def test_the_rebuilt_checkpoint_computes_what_the_trained_one_does(
    tiny_run, tiny_onnx, synthetic_data, tmp_path
):
    script = load_script("checkpoint_from_onnx")
    images = sorted((synthetic_data / "images").iterdir())
    original = load_checkpoint(tiny_run / "best.pt")
    batch = np.stack([preprocess(read_rgb(p), original.contract) for p in images]).astype(np.float32)
    statistics, held_out = batch[: len(batch) // 2], batch[len(batch) // 2 :]

    model, contract, diff = script.rebuild(tiny_onnx, statistics)
    assert diff < 1e-3  # against ONNX Runtime, as the script checks before it writes
    assert replace(contract, checkpoint_sha256="") == original.contract  # the export names its checkpoint

    trained = original.build_model()
    with torch.no_grad():
        ours = model.eval()(torch.from_numpy(held_out))
        theirs = trained(torch.from_numpy(held_out))
    assert torch.allclose(ours, theirs, atol=1e-3)  # on images the statistics were not taken from

    # each batch norm holds the statistics of what reaches it, not the placeholder 0/1
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(not torch.allclose(n.running_var, torch.ones_like(n.running_var)) for n in norms)

    # a second rebuild from the same inputs is the same model, weight for weight
    again, _, _ = script.rebuild(tiny_onnx, statistics)
    first, second = model.state_dict(), again.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
