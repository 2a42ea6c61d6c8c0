"""benchmarks/recipe_final.py: results recorded from finished runs, and the seed tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_benchmark

recipe_final = load_benchmark("recipe_final")


def finished_run(
    root: Path, seed: int, crop_iou: float, crop_pixels: int = 10
) -> tuple[Path, Path]:
    """A run folder (config.yaml, metrics.jsonl) and its evaluation folder (report.json)."""
    run, evaluation = root / f"cwfid-s{seed}", root / f"cwfid-s{seed}-eval-test"
    run.mkdir(parents=True)
    evaluation.mkdir()
    (run / "config.yaml").write_text(f"seed: {seed}\n")
    lines = [{"step": 10, "time": 1000.0}, {"step": 2000, "time": 2500.0}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    per_class = {
        "soil": {"iou": 0.99, "pixels": 100},
        "crop": {"iou": crop_iou, "pixels": crop_pixels},
        "weed": {"iou": 0.8, "pixels": 10},
    }
    mean = (0.99 + crop_iou + 0.8) / 3
    report = {"metrics": {"mIoU": mean, "per_class": per_class}, "settings": {"split": "test"}}
    (evaluation / "report.json").write_text(json.dumps(report))
    return run, evaluation


def test_records_and_summarises_seeds_with_mean_and_std(tmp_path, monkeypatch):
    monkeypatch.setattr(recipe_final, "OUT", tmp_path / "results")
    for seed, crop in ((0, 0.6), (1, 0.7)):
        result = recipe_final.record(
            "cwfid", seed, "test", *finished_run(tmp_path, seed, crop), "m"
        )
        assert result["steps"] == 2000 and result["train_s"] == 1500.0
    assert (tmp_path / "results" / "cwfid-s1-config.yaml").read_text() == "seed: 1\n"
    table = recipe_final.summary(tmp_path / "results")
    assert "| cwfid | test | 0 | 2000 | 0.7967 |" in table
    assert "0.6500 +- 0.0707" in table  # crop IoU over the two seeds
    assert table.count("\n") == 4  # head, rule, two seeds, their mean
    assert table.splitlines()[2].endswith("| 1500 | m |")  # training seconds and machine


def test_a_class_absent_from_the_split_is_left_out_of_the_present_mean(tmp_path, monkeypatch):
    monkeypatch.setattr(recipe_final, "OUT", tmp_path / "results")
    run, evaluation = finished_run(tmp_path, 0, 0.0, crop_pixels=0)  # Peanut test: no crop
    result = recipe_final.record("peanut", 0, "test", run, evaluation, "m")
    assert result["present"] == ["soil", "weed"]
    assert result["mIoU_present"] == pytest.approx((0.99 + 0.8) / 2)
