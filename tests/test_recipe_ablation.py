"""benchmarks/recipe_ablation.py end to end at a tiny budget: folds, no test photo, results."""

from __future__ import annotations

import json

import pytest
from conftest import load_benchmark
from labeled_datasets import write_colour_dataset

from weedseg.data.format import DatasetInfo

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _script():
    return load_benchmark("recipe_ablation")


def test_folds_partition_the_train_photos_the_same_way_every_time() -> None:
    ablation = _script()
    stems = [f"{i:03d}" for i in range(39)]
    held = [ablation.fold_splits(stems, fold)[1] for fold in range(ablation.FOLDS)]
    assert sorted(s for fold in held for s in fold) == stems  # every photo validates once
    assert sorted(len(fold) for fold in held) == [9, 10, 10, 10]
    train, val = ablation.fold_splits(stems, 2)
    assert set(train).isdisjoint(val) and len(train) + len(val) == 39
    assert ablation.fold_splits(list(reversed(stems)), 2)[1] == sorted(val, reverse=True)


def test_tiny_ablation_writes_one_result_per_run_resumes_and_summarises(tmp_path, capsys):
    ablation = _script()
    info = write_colour_dataset(tmp_path / "data", {"train": [(48, 64)] * 8, "test": [(48, 64)]})
    for stem in info.split("test"):  # a run that read a test photo would fail
        info.image_path(stem).unlink()
        info.mask_path(stem).unlink()
    results = tmp_path / "results"
    budget = "{arch: unet-tiny, input_scale: 1.0, size: 32, batch: 2, steps: 2, "
    budget += "val_every: 2, val_tile: 128, workers: 0}"
    args = ["--data", str(info.root), "--work", str(tmp_path / "work"), "--out", str(results)]
    factors = ("baseline", "loss-lovasz", "steps-x2", "tta-flip")
    factors += ("new-sampler-unet", "adopted-lr-3e-4")  # the adopted recipe and one change on it
    args += ["--factors", ",".join(factors), "--folds", "1", "--seeds", "0,1"]
    args += ["--budget", budget]
    assert ablation.main(args) == 0

    files = sorted(p.name for p in results.glob("*.json"))
    assert files == [
        f"{factor}-fold1-s{seed}.json" for factor in sorted(factors) for seed in (0, 1)
    ]
    record = json.loads((results / "steps-x2-fold1-s1.json").read_text())
    assert record["change"] == {"steps": 4} and record["config"]["steps"] == 4
    assert [point["step"] for point in record["curve"]] == [2, 4]
    assert record["train_images"] + record["val_images"] == 8
    assert set(record["val_last"]["iou"]) == {"soil", "crop", "weed"}
    flipped = json.loads((results / "tta-flip-fold1-s0.json").read_text())  # baseline, scored
    assert flipped["evaluate"]["tta"] == "flip" and flipped["evaluate"]["split"] == "val"
    assert flipped["val_last"]["step"] == 2 and flipped["config"]["loss"] == "ce+dice"
    fold = DatasetInfo.load(tmp_path / "work" / "folds" / "fold1")
    assert set(fold.splits) == {"train", "val"} and set(fold.images) == set(info.split("train"))

    capsys.readouterr()
    assert ablation.main(args) == 0  # everything is done: nothing runs again
    printed = capsys.readouterr().out
    assert printed.count("[skip]") == 12
    table = [line for line in printed.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| factor | change | runs | val mIoU | vs | d mIoU vs it")
    rows = {line.split(" | ")[0].strip("| "): line for line in table[1:]}
    assert set(rows) == set(factors)
    assert " | 2 | " in rows["loss-lovasz"] and "loss=lovasz" in rows["loss-lovasz"]
    assert " | baseline | " in rows["loss-lovasz"]
    adopted = rows["adopted-lr-3e-4"]  # compared with the adopted recipe, its one change shown
    assert " | new-sampler-unet | " in adopted and "| lr=0.0003 |" in adopted
    record = json.loads((results / "adopted-lr-3e-4-fold1-s0.json").read_text())
    assert record["config"]["crop_zoom"] == [1.0, 1.0] and record["config"]["lr"] == 3e-4
