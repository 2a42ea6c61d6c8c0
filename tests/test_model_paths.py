"""What a model path is, and where its bundle and training checkpoint are, on tiny fake folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from weedseg.bundle import Manifest, write_manifest
from weedseg.classes import DEFAULT_CLASSES
from weedseg.errors import WeedsegError
from weedseg.model_paths import (
    bundle_checkpoint,
    is_bundle,
    resolve_checkpoint,
    resolve_model,
    run_name,
)


def fake_checkpoint(stem: Path) -> Path:
    """A checkpoint as the resolver sees it: the sidecar and the weights file beside it."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text("{}")
    stem.with_suffix(".safetensors").write_bytes(b"")
    return stem


def fake_bundle(root: Path, checkpoint: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(
        model_name="fake",
        classes=[{"name": c.name, "color": c.color} for c in DEFAULT_CLASSES],
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        provenance={"checkpoint": checkpoint} if checkpoint else {},
    )
    write_manifest(root, manifest, files=[])
    return root


def test_a_run_folder_gives_its_best_checkpoint_else_its_last(tmp_path: Path) -> None:
    run = tmp_path / "run"
    last = fake_checkpoint(run / "checkpoints" / "last")
    model = resolve_model(run)
    assert (model.kind, model.bundle) == ("run", None)
    assert model.checkpoint() == last
    best = fake_checkpoint(run / "checkpoints" / "best")
    assert model.checkpoint() == best and model.checkpoint("last") == last
    assert run_name(best) == "run"
    with pytest.raises(WeedsegError, match="no checkpoint best or last"):
        resolve_model(tmp_path).checkpoint()


def test_a_checkpoint_is_named_by_its_stem_or_either_file(tmp_path: Path) -> None:
    stem = fake_checkpoint(tmp_path / "model")
    for given in (stem, stem.with_suffix(".json"), stem.with_suffix(".safetensors")):
        model = resolve_model(given)
        assert model.kind == "checkpoint" and model.checkpoint() == stem
    assert run_name(stem) == "model"
    with pytest.raises(WeedsegError, match="not a weedseg checkpoint"):
        resolve_checkpoint(tmp_path / "other.safetensors")


def test_a_bundle_finds_the_checkpoint_it_was_exported_from(tmp_path: Path) -> None:
    stem = fake_checkpoint(tmp_path / "run" / "checkpoints" / "best")
    recorded = fake_bundle(tmp_path / "recorded", checkpoint=str(stem))
    model = resolve_model(recorded)
    assert (model.kind, model.bundle, model.checkpoint()) == ("bundle", recorded, stem)
    assert is_bundle(recorded) and not is_bundle(tmp_path / "run")

    beside = fake_bundle(tmp_path / "beside", checkpoint="weights/model")  # relative to it
    weights = fake_checkpoint(beside / "weights" / "model")
    assert resolve_model(beside).checkpoint() == weights

    moved = fake_bundle(tmp_path / "moved", checkpoint=str(tmp_path / "gone" / "best"))
    assert bundle_checkpoint(moved) is None
    with pytest.raises(WeedsegError, match="gone/best.*is not on this machine"):
        resolve_model(moved).checkpoint()
    with pytest.raises(WeedsegError, match="not recorded"):
        resolve_model(fake_bundle(tmp_path / "bare")).checkpoint()


def test_a_registry_version_is_its_bundle_and_its_copied_checkpoint(tmp_path: Path) -> None:
    version = tmp_path / "versions" / "v0001"
    bundle = fake_bundle(version / "bundle")
    (version / "version.json").write_text("{}")
    model = resolve_model(version)
    assert (model.kind, model.bundle) == ("registry-version", bundle)
    with pytest.raises(WeedsegError, match="registry version has no training checkpoint"):
        model.checkpoint()
    stem = fake_checkpoint(version / "checkpoint" / "model")
    assert model.checkpoint() == stem


def test_a_retrain_run_is_its_fine_tuning_run_and_its_bundle_once_exported(tmp_path: Path):
    run = tmp_path / "retrain"
    (run / "finetune").mkdir(parents=True)
    (run / "retrain.yaml").write_text("base: x\n")
    best = fake_checkpoint(run / "finetune" / "checkpoints" / "best")
    last = fake_checkpoint(run / "finetune" / "checkpoints" / "last")
    model = resolve_model(run)
    assert (model.kind, model.bundle) == ("retrain-run", None)  # not exported yet
    assert model.checkpoint() == best and model.checkpoint("last") == last
    bundle = fake_bundle(run / "bundle", checkpoint=str(best))
    assert resolve_model(run).bundle == bundle
