import numpy as np
import pytest

from polyp_rt.train.metrics import Counts, MetricSet


def test_counts_and_ratios_by_hand():
    truth = np.array([[1, 1, 0, 0], [1, 1, 0, 0]])
    pred = np.array([[1, 0, 0, 0], [1, 1, 1, 0]])
    c = Counts.of(pred, truth)
    assert (c.tp, c.fp, c.fn, c.tn) == (3, 1, 1, 3)
    r = c.ratios()
    assert r["dice"] == pytest.approx(6 / 8)
    assert r["iou"] == pytest.approx(3 / 5)
    assert r["precision"] == pytest.approx(3 / 4)
    assert r["recall"] == pytest.approx(3 / 4)
    assert r["accuracy"] == pytest.approx(6 / 8)


def test_empty_truth_and_prediction_score_one():
    empty = np.zeros((3, 3), np.uint8)
    assert Counts.of(empty, empty).ratios() == {
        k: 1.0 for k in ("dice", "iou", "precision", "recall", "accuracy")
    }


def test_mean_per_image_differs_from_micro():
    ms = MetricSet()
    big_truth = np.ones((10, 10))
    ms.add(big_truth, big_truth)  # perfect: dice 1
    small_truth = np.zeros((10, 10))
    small_truth[0, 0] = 1
    ms.add(np.zeros((10, 10)), small_truth)  # missed: dice 0
    s = ms.summary()
    assert s["images"] == 2
    assert s["dice"] == pytest.approx(0.5)
    assert s["micro"]["dice"] == pytest.approx(200 / 201)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        Counts.of(np.zeros((2, 2)), np.zeros((2, 3)))
