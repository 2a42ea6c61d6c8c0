"""Confusion-matrix metrics: a planted matrix checked by hand and against torchmetrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassJaccardIndex,
    MulticlassPrecision,
    MulticlassRecall,
)

from weedseg.classes import IGNORE_INDEX
from weedseg.evaluate.metrics import ConfusionMatrix, confusion_matrix, metrics_from_matrix

# rows = ground truth (soil, crop, weed), columns = prediction
PLANTED = np.array([[50, 2, 3], [4, 20, 1], [6, 0, 14]])


def pixels_from_matrix(matrix: np.ndarray, ignored: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled (target, pred) pixel lists realising `matrix`, plus ignored pixels."""
    target, pred = [], []
    for t in range(matrix.shape[0]):
        for p in range(matrix.shape[1]):
            target += [t] * int(matrix[t, p])
            pred += [p] * int(matrix[t, p])
    target += [IGNORE_INDEX] * ignored
    pred += [1] * ignored  # whatever the model says on ignored pixels must not count
    order = np.random.default_rng(0).permutation(len(target))
    return np.array(target)[order], np.array(pred)[order]


def test_planted_matrix_matches_hand_computed_scores():
    target, pred = pixels_from_matrix(PLANTED)
    cm = ConfusionMatrix(3)
    # split into two "images" to exercise accumulation
    half = len(target) // 2
    cm.update(target[:half], pred[:half])
    cm.update(target[half:], pred[half:])
    np.testing.assert_array_equal(cm.matrix, PLANTED)

    m = cm.compute()
    iou = [50 / (55 + 60 - 50), 20 / (25 + 22 - 20), 14 / (20 + 18 - 14)]
    np.testing.assert_allclose(m.iou, iou)
    assert m.miou == pytest.approx(sum(iou) / 3)
    assert m.aacc == pytest.approx(84 / 100)
    np.testing.assert_allclose(m.accuracy, [50 / 55, 20 / 25, 14 / 20])
    assert m.macc == pytest.approx((50 / 55 + 20 / 25 + 14 / 20) / 3)
    np.testing.assert_allclose(m.precision, [50 / 60, 20 / 22, 14 / 18])
    np.testing.assert_array_equal(m.pixels, [55, 25, 20])


def test_planted_matrix_matches_torchmetrics():
    target, pred = pixels_from_matrix(PLANTED)
    m = metrics_from_matrix(confusion_matrix(target, pred, 3))
    t, p = torch.from_numpy(target), torch.from_numpy(pred)
    kw = {"num_classes": 3, "ignore_index": IGNORE_INDEX}

    tm_matrix = MulticlassConfusionMatrix(**kw)(p, t).numpy()
    np.testing.assert_array_equal(tm_matrix, PLANTED)
    np.testing.assert_allclose(m.iou, MulticlassJaccardIndex(average="none", **kw)(p, t), 1e-6)
    assert m.miou == pytest.approx(float(MulticlassJaccardIndex(average="macro", **kw)(p, t)))
    assert m.aacc == pytest.approx(float(MulticlassAccuracy(average="micro", **kw)(p, t)))
    assert m.macc == pytest.approx(float(MulticlassRecall(average="macro", **kw)(p, t)))
    np.testing.assert_allclose(m.precision, MulticlassPrecision(average="none", **kw)(p, t), 1e-6)


def test_class_absent_everywhere_is_left_out_of_the_means():
    matrix = np.array([[8, 2, 0], [1, 9, 0], [0, 0, 0]])
    m = metrics_from_matrix(matrix)
    assert np.isnan(m.iou[2]) and np.isnan(m.accuracy[2]) and np.isnan(m.precision[2])
    assert m.miou == pytest.approx((8 / 11 + 9 / 12) / 2)
    scores = m.to_dict(["soil", "crop", "weed"])
    assert scores["per_class"]["weed"]["iou"] is None
    assert scores["per_class"]["crop"]["pixels"] == 10


def test_predicted_but_absent_class_scores_zero_iou():
    matrix = np.array([[8, 2], [0, 0]])  # class 1 never in the ground truth, predicted twice
    m = metrics_from_matrix(matrix)
    assert m.iou[1] == 0.0
    assert m.miou == pytest.approx((8 / 10 + 0) / 2)


def test_mask_value_outside_the_classes_is_an_error():
    with pytest.raises(ValueError, match="mask value 7"):
        confusion_matrix(np.array([0, 7]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="differ in shape"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 3)
