"""Training on several data sets at once, and the multi-set `eval` table."""

import json
from pathlib import Path

import numpy as np
import pytest

from polyp_rt.cli.main import main
from polyp_rt.core.errors import DataError, PolypRtError
from tests.conftest import tiny_train_config


@pytest.fixture
def presplit(tmp_path, make_pair) -> Path:
    """A ready split (train 8 / val 3 / test 3) whose train and test splits hold polyp-free images."""
    root = tmp_path / "presplit"
    for split, count in (("train", 8), ("val", 3), ("test", 3)):
        for i in range(count):
            truth = make_pair(root / split / "images", root / split / "masks", f"{split}{i}", seed=50 + i)
            if split != "val" and i == 0:  # no polyp: an empty mask
                import cv2

                cv2.imwrite(str(root / split / "masks" / f"{split}{i}.png"), np.zeros_like(truth))
    return root


def test_two_data_sets_keep_their_splits_and_validate_apart(kvasir_dir, presplit, tmp_path):
    from polyp_rt.train.trainer import train

    run = tmp_path / "run"
    summary = train(tiny_train_config([kvasir_dir, presplit], run, epochs=1, val_share=0.2, test_share=0.1))
    datasets = json.loads((run / "split.json").read_text())["datasets"]
    assert [Path(d["root"]).name for d in datasets] == ["kvasir", "presplit"]
    # kvasir: 20 pairs, seeded 70/20/10 -> 14 / 4 / 2; the ready split as it is
    assert [len(datasets[0][k]) for k in ("train", "val", "test")] == [14, 4, 2]
    assert datasets[0]["how"] == "seeded 70/20/10 (seed 0)"
    assert [len(datasets[1][k]) for k in ("train", "val", "test")] == [8, 3, 3]
    (record,) = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    sets = record["val_sets"]
    assert list(sets) == ["kvasir", "presplit"]
    assert sets["kvasir"]["images"] == 4 and sets["presplit"]["images"] == 3
    assert record["val_dice"] == pytest.approx((sets["kvasir"]["dice"] + sets["presplit"]["dice"]) / 2)
    assert set(summary["test"]) == {"kvasir", "presplit"}
    assert summary["test"]["presplit"]["images"] == 3 and summary["test"]["presplit"]["polyp_free"] == 1

    from polyp_rt.engines.checkpoint import load_checkpoint
    from polyp_rt.train.config import TrainConfig

    assert load_checkpoint(run / "last.pt").provenance["data"] == [str(kvasir_dir), str(presplit)]
    train(TrainConfig(resume=run / "last.pt", epochs=2, workers=0))  # no --data: the run's own
    assert json.loads((run / "split.json").read_text())["datasets"] == datasets  # no image changed side
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["epoch"] == 2 and list(last["val_sets"]) == ["kvasir", "presplit"]


def test_polyp_free_images_can_be_shown_more_often(presplit, tmp_path):
    import torch

    from polyp_rt.engines.models import contract_for, model_config
    from polyp_rt.train.run_data import load_data, make_loaders

    config = tiny_train_config([presplit], tmp_path, polyp_free_repeats=3)
    sets = load_data(config)
    contract = contract_for(model_config("cpu", "mobilenet_v2", 64))
    train_loader, val = make_loaders(sets, contract, config, torch.device("cpu"))
    # 8 train images, one of them polyp-free shown 3 times: 10 a epoch; validation untouched
    assert len(train_loader.dataset) == 10 and len(val["presplit"].dataset) == 3


def test_a_missing_or_empty_data_set_is_one_line_naming_it(kvasir_dir, tmp_path, capsys):
    args = [
        "train",
        "--data",
        str(kvasir_dir),
        "--data",
        str(tmp_path / "nope"),
        "--out",
        str(tmp_path / "r"),
    ]
    assert main(args) == 2
    assert f"{tmp_path / 'nope'}: data folder not found" in capsys.readouterr().err
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "masks").mkdir()
    assert main([*args[:3], "--data", str(empty), "--out", str(tmp_path / "r")]) == 2
    assert f"{empty}: no usable image/mask pairs" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing made


def test_a_validation_split_without_a_polyp_is_refused(tmp_path, make_pair, caplog):
    import cv2

    from polyp_rt.train.run_data import load_data

    root = tmp_path / "d"
    for split in ("train", "val", "test"):
        truth = make_pair(root / split / "images", root / split / "masks", split)
        cv2.imwrite(str(root / split / "masks" / f"{split}.png"), np.zeros_like(truth))
    with caplog.at_level("WARNING", logger="polyp_rt"), pytest.raises(DataError, match="validation split"):
        load_data(tiny_train_config([root], tmp_path / "run"))
    assert "every mask is empty" in caplog.text


def test_the_same_data_set_twice_is_refused(kvasir_dir, tmp_path):
    from polyp_rt.train.run_data import load_data

    with pytest.raises(PolypRtError, match="given twice"):
        load_data(tiny_train_config([kvasir_dir, kvasir_dir / "."], tmp_path))


def test_resume_from_best_pt_says_what_it_holds(tiny_run, capsys):
    assert main(["train", "--resume", str(tiny_run / "best.pt")]) == 2
    err = capsys.readouterr().err
    assert "best epoch only" in err and "last.pt" in err and "--init" in err


def test_eval_prints_one_row_per_data_set_and_one_json_line_each(
    tiny_run, synthetic_data, kvasir_dir, capsys
):
    model = str(tiny_run / "best.pt")
    assert main(["eval", "--data", str(synthetic_data), "--data", str(kvasir_dir), "--model", model]) == 0
    table = capsys.readouterr().out
    assert "mDice" in table and synthetic_data.name in table and "kvasir" in table
    assert (
        main(["eval", "--data", str(synthetic_data), "--data", str(kvasir_dir), "--model", model, "--json"])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["name"] for r in rows] == [synthetic_data.name, "kvasir"]
    (split,) = json.loads((tiny_run / "split.json").read_text())["datasets"]
    assert rows[0]["images"] == len(split["test"])  # the run's own test split of the data it trained on
    assert rows[1]["images"] == 20 and rows[1]["which"] == f"all 20 images in {kvasir_dir}"
    assert {"dice", "iou", "precision", "recall", "micro", "polyp_free", "quiet"} <= set(rows[1])


def test_eval_of_an_empty_test_split_is_one_line(tmp_path, kvasir_dir, capsys):
    from polyp_rt.train.trainer import train

    run = tmp_path / "run"
    train(tiny_train_config([kvasir_dir], run, epochs=1, test_share=0.0))
    assert main(["eval", "--data", str(kvasir_dir), "--model", str(run / "best.pt")]) == 2
    assert "its test split is empty" in capsys.readouterr().err


def ramp_onnx(path: Path, size: int) -> Path:
    """A model whose logits ignore the image: +4 on the left half of the columns, -1 on the right."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from polyp_rt.engines.contract import ModelContract

    ramp = np.full((1, 1, size, size), -1.0, np.float32)
    ramp[..., : size // 2] = 4.0
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "w"], ["zero"], pads=[0, 0, 0, 0]),
            helper.make_node("Add", ["zero", "ramp"], ["logits"]),
        ],
        "ramp",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1, size, size])],
        [
            numpy_helper.from_array(np.zeros((1, 3, 1, 1), np.float32), "w"),
            numpy_helper.from_array(ramp, "ramp"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    helper.set_model_props(model, ModelContract(size, size, preset="ramp").to_metadata())
    onnx.save(model, str(path))
    return path


def test_flip_tta_averages_the_probabilities_of_the_flips(tmp_path, make_pair):
    import cv2

    from polyp_rt.engines.backends.onnxruntime_backend import OnnxRuntimeEngine
    from polyp_rt.train.data import Pair
    from polyp_rt.train.evaluate import evaluate_engine

    size = 16
    model = ramp_onnx(tmp_path / "ramp.onnx", size)
    make_pair(tmp_path / "images", tmp_path / "masks", "a", size=(size, size))
    truth = np.zeros((size, size), np.uint8)
    truth[:, : size // 2] = 255  # the left half: what the model predicts without TTA
    cv2.imwrite(str(tmp_path / "masks" / "a.png"), truth)
    pairs = [Pair(tmp_path / "images" / "a.png", tmp_path / "masks" / "a.png")]
    with OnnxRuntimeEngine(model) as engine:
        plain = evaluate_engine(engine, pairs)
        tta = evaluate_engine(engine, pairs, tta=True)
    assert plain["dice"] == pytest.approx(1.0)
    # With TTA, left: (s(4) + s(-1) + s(4)) / 3 = 0.744, right: (s(-1) + s(4) + s(-1)) / 3 = 0.507
    # (the horizontal flip swaps the halves, the vertical one does not): both >= 0.5, the whole
    # image is predicted, and Dice = 2 * (A/2) / (A + A/2) = 2/3.
    assert tta["dice"] == pytest.approx(2 / 3)
