"""Checkpoints: safetensors + JSON round trip, run-folder resolution, weight transfer report."""

from __future__ import annotations

import json

import pytest
import torch

from weedseg.checkpoint import load_checkpoint, save_checkpoint, transfer_weights
from weedseg.errors import WeedsegError
from weedseg.models import build_model, spec_from_name

torch.set_num_threads(1)
SPEC = spec_from_name("unet-resnet18-tiny")


def test_round_trip_rebuilds_model_without_naming_it(tmp_path):
    model = build_model(SPEC, out_channels=3).eval()
    meta = {"mean": [0.4, 0.5, 0.3], "std": [0.2, 0.2, 0.2], "step": 7}
    save_checkpoint(tmp_path / "ck", model, spec=SPEC, task="reconstruction", meta=meta)
    assert (tmp_path / "ck.safetensors").is_file()
    assert json.loads((tmp_path / "ck.json").read_text())["task"] == "reconstruction"
    loaded = load_checkpoint(tmp_path / "ck.json")
    assert loaded.spec == SPEC and loaded.meta["mean"] == meta["mean"]
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), loaded.model.eval()(x))


def test_run_folder_prefers_best_then_last(tmp_path):
    model = build_model(SPEC, out_channels=3)
    save_checkpoint(tmp_path / "checkpoints" / "last", model, spec=SPEC, task="segmentation")
    assert load_checkpoint(tmp_path).path.name == "last"
    save_checkpoint(tmp_path / "checkpoints" / "best", model, spec=SPEC, task="segmentation")
    assert load_checkpoint(tmp_path).path.name == "best"
    assert load_checkpoint(tmp_path, which="last").path.name == "last"
    with pytest.raises(WeedsegError, match="not a weedseg checkpoint"):
        load_checkpoint(tmp_path / "nothing")


def test_transfer_carries_all_but_the_head(tmp_path):
    pretrained = build_model(SPEC, out_channels=3)
    save_checkpoint(tmp_path / "pre", pretrained, spec=SPEC, task="reconstruction")
    segmenter = build_model(SPEC, out_channels=4)
    report = transfer_weights(segmenter, tmp_path / "pre")
    head = {"segmentation_head.0.weight", "segmentation_head.0.bias"}
    assert set(report.new) == head and set(report.skipped) == head
    assert len(report.carried) == len(segmenter.state_dict()) - 2
    name = "encoder.conv1.weight"
    assert torch.equal(segmenter.state_dict()[name], pretrained.state_dict()[name])
    assert "carried" in report.summary() and "segmentation_head.0.weight" in report.summary()
