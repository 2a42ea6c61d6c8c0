"""`weedseg export` end to end on a tiny model: bundle contents, verification, refusals."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch
from weedseg.export import bundle_export
from weedseg.export.onnx_export import DeployModel

from weedseg.bundle import (
    MANIFEST_FILE,
    BundleError,
    Manifest,
    load_bundle,
    read_manifest,
    write_manifest,
)
from weedseg.checkpoint import save_checkpoint
from weedseg.classes import DEFAULT_CLASSES
from weedseg.cli import main
from weedseg.models import build_model, spec_from_name

SPEC = "unet-tiny"


def write_checkpoint(stem: Path) -> Path:
    torch.manual_seed(0)
    spec = spec_from_name(SPEC)
    meta = {
        "classes": [c.to_dict() for c in DEFAULT_CLASSES],
        "mean": [0.45, 0.45, 0.4],
        "std": [0.2, 0.2, 0.25],
        "step": 120,
        "seed": 7,
        "data": {"path": "datasets/tiny", "train": 10},
        "metrics": {"val_mIoU": 0.61},
        "input_scale": 0.5,
    }
    return save_checkpoint(stem, build_model(spec, 3), spec=spec, task="segmentation", meta=meta)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("export") / "tinyrun"
    write_checkpoint(run / "checkpoints" / "best")
    return run


@pytest.fixture(scope="module")
def bundle(run_dir: Path) -> Path:
    out = run_dir.parent / "bundle"
    args = [str(run_dir), "--out", str(out), "--imgsz", "64", "--dynamic", "--max-size", "128"]
    assert main(["export", *args, "--verify-n", "2", "--check"]) == 0
    return out


def test_bundle_holds_a_verified_model_and_a_complete_manifest(bundle: Path) -> None:
    loaded = load_bundle(bundle)
    manifest = loaded.manifest
    assert sorted(p.name for p in bundle.iterdir()) == ["model.onnx", MANIFEST_FILE]
    assert manifest.model_name == "tinyrun"
    assert [c.name for c in manifest.classes] == ["soil", "crop", "weed"]
    assert manifest.mean == (0.45, 0.45, 0.4) and manifest.std == (0.2, 0.2, 0.25)
    assert manifest.input.layout == "NHWC" and manifest.input.dtype == "uint8"
    assert manifest.input.dynamic and manifest.input.max_size == 128
    assert manifest.outputs == ["labels", "probs"]
    assert manifest.tile.size == 64 and manifest.tile.overlap == 8
    assert manifest.tile.merge == "blend" and not manifest.plant_vote  # the runtime defaults
    assert manifest.input_scale == 0.5  # the scale the model was fine-tuned at
    assert (
        manifest.arch["encoder"] == "tu-mobilenetv3_small_050"
        and manifest.arch["out_channels"] == 3
    )
    assert manifest.provenance["step"] == 120 and manifest.provenance["seed"] == 7
    assert manifest.provenance["data"]["path"] == "datasets/tiny"
    assert manifest.metrics == {"val_mIoU": 0.61}
    assert {"weedseg", "torch", "onnx", "onnxruntime"} <= set(manifest.producer)
    assert manifest.verification["agreement"] >= 0.999 and manifest.verification["passed"]
    assert manifest.tensorrt_compatibility["passed"]
    assert manifest.int8 is None and manifest.tensorrt == []


def test_export_sets_the_bundles_tile_merge_and_plant_vote(run_dir: Path) -> None:
    out = run_dir.parent / "voting"
    args = [str(run_dir), "--out", str(out), "--imgsz", "64", "--verify-n", "1"]
    assert main(["export", *args, "--tile-merge", "stitch", "--plant-vote"]) == 0
    manifest = load_bundle(out).manifest
    assert manifest.tile.merge == "stitch" and manifest.plant_vote


def test_manifest_round_trips_through_disk(bundle: Path, tmp_path: Path) -> None:
    manifest = read_manifest(bundle)
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    rewritten = write_manifest(copy, manifest, ["model.onnx"])
    assert read_manifest(copy) == rewritten == manifest
    assert Manifest.model_validate_json((copy / MANIFEST_FILE).read_text()) == manifest


def test_a_tampered_byte_in_the_model_is_refused(bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "tampered"
    shutil.copytree(bundle, copy)
    data = bytearray((copy / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model.onnx fails its checksum"):
        load_bundle(copy)


def test_an_incomplete_bundle_is_refused(bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "incomplete"
    shutil.copytree(bundle, copy)
    (copy / "model.onnx").unlink()
    with pytest.raises(BundleError, match="model.onnx is missing"):
        load_bundle(copy)


def test_check_on_an_existing_bundle(bundle: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["export", str(bundle), "--check"]) == 0
    assert "ok" in capsys.readouterr().out


def test_existing_bundle_needs_force(run_dir: Path, bundle: Path, capsys) -> None:
    before = (bundle / MANIFEST_FILE).read_bytes()
    assert main(["export", str(run_dir), "--out", str(bundle), "--imgsz", "64"]) == 2
    assert "--force" in capsys.readouterr().err
    assert (bundle / MANIFEST_FILE).read_bytes() == before


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT present")
def test_tensorrt_without_tensorrt_exits_2_with_the_reason(run_dir: Path, capsys) -> None:
    out = run_dir.parent / "trt-bundle"
    code = main(["export", str(run_dir), "--out", str(out), "--imgsz", "64", "--tensorrt", "fp16"])
    err = capsys.readouterr().err
    assert code == 2
    assert "TensorRT is not installed" in err and "build_engine.sh" in err
    assert not out.exists()


def test_failed_verification_leaves_no_bundle(
    run_dir: Path, bundle: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    real_export = bundle_export.export_onnx

    def export_other_weights(deploy: DeployModel, path: Path, options) -> None:
        torch.manual_seed(1)  # a different network than the one verified against
        other = DeployModel(build_model(SPEC, 3).eval(), (0.5,) * 3, (0.25,) * 3, options.layout)
        real_export(other, path, options)

    monkeypatch.setattr(bundle_export, "export_onnx", export_other_weights)
    before = json.loads((bundle / MANIFEST_FILE).read_text())
    args = [str(run_dir), "--out", str(bundle), "--imgsz", "64", "--verify-n", "2", "--force"]
    assert main(["export", *args]) == 2
    assert "ONNX verification failed" in capsys.readouterr().err
    assert json.loads((bundle / MANIFEST_FILE).read_text()) == before  # old bundle untouched
    assert not [p for p in bundle.parent.iterdir() if p.name.startswith(".bundle")]


def test_reconstruction_checkpoint_is_refused(tmp_path: Path, capsys) -> None:
    spec = spec_from_name(SPEC)
    stem = save_checkpoint(tmp_path / "pre", build_model(spec, 3), spec=spec, task="reconstruction")
    assert main(["export", str(stem), "--out", str(tmp_path / "b"), "--imgsz", "64"]) == 2
    assert "fine-tune it first" in capsys.readouterr().err
