"""`--resume` takes the same command again: equal flags pass, only a conflicting flag is refused."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import yaml

import weedseg.finetune.trainer
import weedseg.retrain.workflow
from weedseg.cli import main
from weedseg.finetune.config import FinetuneConfig
from weedseg.retrain.config import RetrainConfig


class Started(Exception):
    """Raised by the stand-in trainer with the config the command built."""


def _capture(monkeypatch, module, name: str) -> None:
    def started(config, *args, **kwargs):
        raise Started(config)

    monkeypatch.setattr(module, name, started)


def _config_of(argv: list[str]):
    with pytest.raises(Started) as started:
        main(argv)
    return started.value.args[0]


def test_finetune_resume_with_the_same_or_fewer_flags(tmp_path, monkeypatch, capsys):
    _capture(monkeypatch, weedseg.finetune.trainer, "run_finetune")
    out = tmp_path / "run"
    out.mkdir()
    first = FinetuneConfig(data="data", out=str(out), steps=5, lr=0.01, crop_scale=(0.1, 0.5))
    (out / "config.yaml").write_text(yaml.safe_dump(asdict(first) | {"crop_scale": [0.1, 0.5]}))
    command = ["finetune", "--data", "data", "--out", str(out), "--steps", "5", "--lr", "0.01"]
    command += ["--crop-scale", "0.1,0.5"]

    again = _config_of([*command, "--resume", "--device", "cpu"])
    assert again.resume and again.device == "cpu"
    assert (again.steps, again.lr, again.crop_scale) == (5, 0.01, (0.1, 0.5))
    short = _config_of(["finetune", "--data", "data", "--out", str(out), "--resume"])
    assert (short.steps, short.lr) == (5, 0.01)  # the run's values, not the flags' defaults

    assert main([*command, "--resume", "--batch", "4", "--lr", "0.02"]) == 2
    error = capsys.readouterr().err
    assert "--batch 4 (the run has 8); --lr 0.02 (the run has 0.01)" in error
    assert "--steps" not in error


def test_retrain_resume_refuses_only_a_conflicting_flag(tmp_path, monkeypatch, capsys):
    _capture(monkeypatch, weedseg.retrain.workflow, "retrain")
    out = tmp_path / "run"
    out.mkdir()
    images = tmp_path / "photos"
    images.mkdir()
    first = RetrainConfig(images=str(images), labels="l", base="b", out=str(out), budget="tiny")
    (out / "retrain.yaml").write_text(yaml.safe_dump(asdict(first)))
    command = ["retrain", "--images", str(images), "--labels", "l", "--base", "b"]
    command += ["--out", str(out), "--budget", "tiny"]

    moved = ["retrain", "--images", f"{tmp_path}/./photos", *command[3:]]  # the same folder
    assert _config_of([*moved, "--resume", "--workers", "0"]).budget == "tiny"
    assert main([*command, "--resume", "--budget", "large"]) == 2
    assert "--budget large (the run has tiny)" in capsys.readouterr().err
