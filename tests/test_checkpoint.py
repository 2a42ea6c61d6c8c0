"""Checkpoints: safetensors + JSON round trip, run-folder resolution, weight transfer report."""

from __future__ import annotations

import json

import pytest
import torch

from weedseg.checkpoint import (
    CheckpointMeta,
    load_checkpoint,
    read_meta,
    save_checkpoint,
    transfer_weights,
)
from weedseg.errors import WeedsegError
from weedseg.models import build_model, spec_from_name

torch.set_num_threads(1)
SPEC = spec_from_name("unet-tiny")


def test_round_trip_rebuilds_model_without_naming_it(tmp_path):
    model = build_model(SPEC, out_channels=3).eval()
    meta = {"mean": [0.4, 0.5, 0.3], "std": [0.2, 0.2, 0.2], "step": 7}
    save_checkpoint(tmp_path / "ck", model, spec=SPEC, task="reconstruction", meta=meta)
    assert (tmp_path / "ck.safetensors").is_file()
    assert json.loads((tmp_path / "ck.json").read_text())["task"] == "reconstruction"
    loaded = load_checkpoint(tmp_path / "ck.json")
    assert loaded.spec == SPEC and loaded.meta.mean == meta["mean"]
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), loaded.model.eval()(x))


# the meta dict of a fine-tuned checkpoint as versions before CheckpointMeta wrote it
OLD_SEGMENTATION_META = {
    "classes": [{"name": "soil", "color": [0, 0, 0]}, {"name": "weed", "color": [255, 0, 0]}],
    "mean": [0.4, 0.5, 0.3],
    "std": [0.2, 0.2, 0.2],
    "seed": 0,
    "data": {"path": "data/cwfid", "train": 40, "val": 10, "val_source": "split 'val'"},
    "init": {"source": "runs/pre/checkpoints/last", "carried": 120},
    "loss": "ce+dice",
    "class_weights": [0.5, 2.0],
    "config": {"steps": 1000, "batch": 8},
    "step": 1000,
    "metrics": {"val_mIoU": 0.61},
    "score": 0.61,
    "a_key_from_a_later_version": {"kept": True},
}


def test_old_style_meta_reads_typed_with_defaults_and_is_written_back_unchanged(tmp_path):
    model = build_model(SPEC, out_channels=2)
    save_checkpoint(
        tmp_path / "old", model, spec=SPEC, task="segmentation", meta=OLD_SEGMENTATION_META
    )
    meta = load_checkpoint(tmp_path / "old").meta
    assert meta.class_names == ["soil", "weed"] and meta.classes[1].color == (255, 0, 0)
    assert meta.mean == [0.4, 0.5, 0.3] and meta.step == 1000 and meta.score == 0.61
    assert meta.input_scale == 1.0  # written before --input-scale existed: full resolution
    assert meta.data["val"] == 10 and meta.class_weights == [0.5, 2.0]
    assert meta.extra == {"a_key_from_a_later_version": {"kept": True}}
    save_checkpoint(tmp_path / "again", model, spec=SPEC, task="segmentation", meta=meta)
    written = json.loads((tmp_path / "again.json").read_text())["meta"]
    assert written == OLD_SEGMENTATION_META  # same keys, same values: old readers still work

    pretrained = {"mean": [0.4, 0.5, 0.3], "std": [0.2, 0.2, 0.2], "phase": 2, "images": 60}
    save_checkpoint(tmp_path / "pre", model, spec=SPEC, task="reconstruction", meta=pretrained)
    meta = read_meta(tmp_path / "pre")
    assert meta.classes == () and meta.metrics is None and meta.phase == 2
    assert CheckpointMeta.from_dict(None) == CheckpointMeta()  # a sidecar without meta
    assert meta.to_dict() == pretrained


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
    name = next(key for key in pretrained.state_dict() if key.startswith("encoder."))
    assert torch.equal(segmenter.state_dict()[name], pretrained.state_dict()[name])
    assert "carried" in report.summary() and "segmentation_head.0.weight" in report.summary()
