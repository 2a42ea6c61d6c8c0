"""benchmarks/sms_experiment.py at a tiny budget: arms x pretraining budgets, tables, the PNG."""

from __future__ import annotations

import sys

import cv2
import pytest
from conftest import load_benchmark
from labeled_datasets import write_colour_dataset

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_budget_sweep_runs_each_arm_once_per_budget_and_scratch_once(
    tmp_path, monkeypatch, capsys
):
    sms = load_benchmark("sms_experiment")
    info = write_colour_dataset(tmp_path / "data", {"train": [(64, 80)] * 6, "test": [(64, 80)]})
    tiny = sms.RECIPE_17 | {"arch": "unet-tiny", "size": 32, "batch": 2, "finetune_steps": 3}
    tiny |= {"eval_tile": 128, "workers": 0}
    experiment = sms.Experiment(
        "tiny", str(info.root), ["scratch", "random", "online"], [0], {"all": [0]},
        archs=["unet-tiny"], budget=tiny, pretrain_budgets=[2, 4],
    )  # fmt: skip
    monkeypatch.setitem(sms.EXPERIMENTS, "tiny", experiment)
    monkeypatch.setattr(sms, "RESULTS", tmp_path / "results")
    command = ["sms_experiment.py", "tiny", "--workdir", str(tmp_path / "work")]
    monkeypatch.setattr(sys, "argv", command)
    assert sms.main() == 0

    names = sorted(p.name for p in (tmp_path / "results" / "tiny").glob("*.json"))
    assert names == [
        "online-cnn-unet-tiny-x0.5-p2-all-s0.json",
        "online-cnn-unet-tiny-x0.5-p4-all-s0.json",
        "random-cnn-unet-tiny-x0.5-p2-all-s0.json",
        "random-cnn-unet-tiny-x0.5-p4-all-s0.json",
        "scratch-unet-tiny-x0.5-all-s0.json",  # no pretraining: one run serves every budget
    ]
    table = sms.summary(experiment)
    assert "| random | cnn | unet-tiny x0.5 | all | 4 | 0 |" in table
    assert "| scratch | - | unet-tiny x0.5 | all | 0 | 1 |" in table  # the per-arm mean rows
    # issue 17's recipe: every labelled photo, the last step kept, so no validation score
    assert all(line.split("|")[-4].strip() == "-" for line in table.splitlines()[2:7])

    monkeypatch.setattr(sys, "argv", [*command, "--plot"])
    assert sms.main() == 0
    picture = cv2.imread(str(tmp_path / "results" / "tiny" / "budget.png"))
    assert picture is not None and picture.shape[1] > 400
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", command)  # everything exists: nothing runs again
    assert sms.main() == 0
    assert capsys.readouterr().out.count("[skip]") == 5 + 1  # scratch is met at both budgets
