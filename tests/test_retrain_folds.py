"""Cross-validation in `weedseg retrain`: which photos each fold holds out, how the held-out
scores are pooled, and how `--time` is shared between the fine-tunes (the runs themselves are
tested in test_retrain.py)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from weedseg.classes import ClassInfo
from weedseg.data.format import DatasetInfo
from weedseg.errors import WeedsegError
from weedseg.imageio import write_image
from weedseg.retrain.config import AUTO_FOLDS, LEAVE_ONE_OUT_MAX, RetrainConfig
from weedseg.retrain.farm_data import assign_folds
from weedseg.retrain.scoring import Segmenter, SplitScores


def config(**overrides) -> RetrainConfig:
    return RetrainConfig(**({"images": "i", "labels": "l", "base": "b", "out": "o"} | overrides))


def test_few_labels_leave_one_out_more_labels_k_folds() -> None:
    assert config().fold_count(3) == 3  # leave-one-out
    assert config().fold_count(LEAVE_ONE_OUT_MAX) == LEAVE_ONE_OUT_MAX
    assert config().fold_count(LEAVE_ONE_OUT_MAX + 1) == AUTO_FOLDS
    assert config(folds=3).fold_count(28) == 3
    assert config(folds=10).fold_count(4) == 4  # never more folds than photos
    with pytest.raises(WeedsegError, match="at least 2"):
        config().fold_count(1)
    with pytest.raises(WeedsegError, match="--folds"):
        config(folds=1)


@pytest.mark.parametrize("photos", [3, 9, 28])
def test_every_photo_is_held_out_by_exactly_one_fold(photos: int) -> None:
    stems = [f"p{i:02d}" for i in range(photos)]
    count = config().fold_count(photos)
    folds = assign_folds(stems, count, seed=0)
    assert len(folds) == count == (3 if photos == 3 else AUTO_FOLDS)
    held = Counter(stem for fold in folds for stem in fold)
    assert set(held) == set(stems) and set(held.values()) == {1}
    sizes = [len(fold) for fold in folds]
    assert max(sizes) - min(sizes) <= 1
    assert assign_folds(stems, count, seed=0) == folds  # the same folds on a resumed run


def test_folds_flag_takes_auto_or_a_number() -> None:
    from weedseg.cli import build_parser

    common = ["retrain", "--images", "i", "--labels", "l", "--base", "b", "--out", "o"]
    assert build_parser().parse_args(common).folds == 0
    assert build_parser().parse_args([*common, "--folds", "auto"]).folds == 0
    assert build_parser().parse_args([*common, "--folds", "4"]).folds == 4


def test_time_is_shared_by_pretraining_and_every_fine_tune() -> None:
    cfg = config(pretrain_steps=200, finetune_steps=400, time=2600.0)
    pretrain, finetune = cfg.stage_seconds(6)  # 5 folds + the shipped model
    assert pretrain == pytest.approx(200.0) and finetune == pytest.approx(400.0)
    assert pretrain + 6 * finetune == pytest.approx(cfg.time)


def red_channel_segmenter() -> Segmenter:
    """Predicts the class written in each pixel's red channel (class * 100)."""
    return Segmenter(lambda image: (image[..., 0] // 100).astype(np.uint8), num_classes=3)


def tiny_dataset(root, pairs: dict[str, tuple[list, list]]) -> DatasetInfo:
    """Images whose red channel is the prediction, masks the ground truth."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for stem, (truth, predicted) in pairs.items():
        image = np.zeros((2, 2, 3), np.uint8)
        image[..., 0] = np.asarray(predicted, np.uint8) * 100
        write_image(root / "images" / f"{stem}.png", image)
        write_image(root / "masks" / f"{stem}.png", np.asarray(truth, np.uint8))
    info = DatasetInfo(
        root=root,
        classes=(
            ClassInfo("soil", (0, 0, 0)),
            ClassInfo("crop", (0, 255, 0)),
            ClassInfo("weed", (255, 0, 0)),
        ),
        splits={"fold-1": ["a"], "fold-2": ["b"]},
        images={stem: f"{stem}.png" for stem in pairs},
    )
    info.save()
    return info


def test_held_out_scores_pool_one_confusion_matrix(tmp_path) -> None:
    info = tiny_dataset(
        tmp_path,
        {
            "a": ([[0, 1], [1, 2]], [[0, 1], [0, 2]]),
            "b": ([[0, 0], [0, 0]], [[0, 0], [0, 1]]),
        },
    )
    model = red_channel_segmenter()
    parts = [model.score(info, info.split(name)) for name in ("fold-1", "fold-2")]
    # each fold's scores travel through its stage record, as on a resumed run
    pooled = SplitScores.pooled([SplitScores.from_record(p.to_record()) for p in parts])
    # rows = truth, columns = prediction, counted by hand over the 8 pixels
    assert pooled.matrix.tolist() == [[4, 1, 0], [1, 1, 0], [0, 0, 1]]
    scores = pooled.to_dict(["soil", "crop", "weed"])
    # IoU soil 4/6, crop 1/3, weed 1/1
    assert [scores["per_class"][n]["iou"] for n in ("soil", "crop", "weed")] == pytest.approx(
        [4 / 6, 1 / 3, 1.0]
    )
    assert scores["mIoU"] == pytest.approx(2 / 3) and scores["images"] == 2
    # not the mean of the per-photo mIoUs (a: 2/3, b: (3/4 + 0) / 2)
    assert pooled.per_image == pytest.approx({"a": 2 / 3, "b": 3 / 8})
    assert np.mean(list(pooled.per_image.values())) == pytest.approx(25 / 48)
