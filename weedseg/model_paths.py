"""What a model path names, and where its bundle and its training checkpoint are; torch-free.

Commands take a model as a path. `resolve_model(path)` says which of five things it is:

    BUNDLE/            weedseg.json (+ model.onnx ...); provenance.checkpoint: the stem it came from
    RUN/               checkpoints/best.{json,safetensors}, checkpoints/last.{...} (a training run)
    STEM               a checkpoint: STEM.json + STEM.safetensors (either file may be named)
    REGISTRY/versions/v0001/   version.json, bundle/, checkpoint/model.{json,safetensors}
    RETRAIN_RUN/       retrain.yaml, finetune/ (a training run), bundle/ once exported

and gives what a command needs: `.bundle` for the runtime (predict, bench, suggest), and
`.checkpoint(which)` for what needs the weights (evaluate, export, retrain, fine-tuning).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from weedseg.bundle import MANIFEST_FILE, read_manifest
from weedseg.errors import WeedsegError

VERSION_FILE = "version.json"  # marks a registry version folder (weedseg.registry.store)
BUNDLE_DIR = "bundle"  # the bundle folder inside a registry version or a retrain run
VERSION_CHECKPOINT = "checkpoint/model"  # a registry version's training checkpoint stem
RETRAIN_CONFIG_FILE = "retrain.yaml"  # marks a `weedseg retrain` run folder
RETRAIN_FINETUNE_RUN = "finetune"  # the retrain run's fine-tuning run folder
CHECKPOINTS_DIR = "checkpoints"  # a training run's checkpoints

ModelKind = Literal["bundle", "run", "checkpoint", "registry-version", "retrain-run"]


def is_bundle(path: str | Path) -> bool:
    """Whether `path` is a bundle folder (it holds a manifest; `load_bundle` verifies it)."""
    return (Path(path) / MANIFEST_FILE).is_file()


def checkpoint_stem(path: str | Path) -> Path:
    """A checkpoint path without its `.json` / `.safetensors` suffix."""
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".json", ".safetensors") else path


def resolve_checkpoint(path_or_run: str | Path, which: str | None = None) -> Path:
    """The checkpoint stem for a run folder, a stem, or either of its two files.

    A run folder resolves to `checkpoints/<which>`; with `which=None`, `best` when the run has
    one (segmentation runs keep the best by validation score) else `last`.
    """
    path = Path(path_or_run)
    if path.is_dir():
        folder = path / CHECKPOINTS_DIR if (path / CHECKPOINTS_DIR).is_dir() else path
        names = [which] if which else ["best", "last"]
        for name in names:
            if (folder / f"{name}.json").is_file():
                return folder / name
        raise WeedsegError(f"{path}: no checkpoint {' or '.join(names)} in {folder}")
    stem = checkpoint_stem(path)
    if not stem.with_suffix(".json").is_file():
        sidecar = stem.with_suffix(".json")
        raise WeedsegError(f"{path}: not a weedseg checkpoint ({sidecar} missing)")
    return stem


def bundle_checkpoint(bundle: str | Path) -> Path | None:
    """The checkpoint a bundle was exported from, if it is still on disk (its manifest records
    the stem: absolute, or relative to the bundle)."""
    bundle = Path(bundle)
    recorded = read_manifest(bundle).provenance.get("checkpoint")
    if not recorded:
        return None
    for candidate in (Path(recorded), bundle / recorded):
        stem = checkpoint_stem(candidate)
        if stem.with_suffix(".json").is_file():
            return stem
    return None


def run_name(stem: str | Path) -> str:
    """The name a checkpoint goes by: its run's folder (RUN/checkpoints/best -> RUN), else its
    own name."""
    stem = Path(stem)
    return stem.parent.parent.name if stem.parent.name == CHECKPOINTS_DIR else stem.name


@dataclass(frozen=True)
class ModelPath:
    """A model path and what it is."""

    path: Path  # as given
    kind: ModelKind
    bundle: Path | None  # the bundle it runs as, when it has one (verify with load_bundle)

    def checkpoint(self, which: str | None = None) -> Path:
        """The training checkpoint's stem (`which`: best or last of a run); a WeedsegError
        that says why when there is none on this machine."""
        if self.kind == "registry-version":
            stem = self.path / VERSION_CHECKPOINT
            if not stem.with_suffix(".json").is_file():
                raise WeedsegError(f"{self.path}: this registry version has no training checkpoint")
            return stem
        if self.kind == "retrain-run":
            return resolve_checkpoint(self.path / RETRAIN_FINETUNE_RUN, which)
        if self.kind == "bundle":
            stem = bundle_checkpoint(self.path)
            if stem is None:
                recorded = read_manifest(self.path).provenance.get("checkpoint")
                raise WeedsegError(
                    f"{self.path}: the bundle's training checkpoint ({recorded or 'not recorded'})"
                    " is not on this machine: pass its training run folder, a registry version"
                    " or a retrain run folder"
                )
            return stem
        return resolve_checkpoint(self.path, which)


def resolve_model(path: str | Path) -> ModelPath:
    """What `path` is (see the module docstring); nothing is verified or loaded yet."""
    path = Path(path)
    if (path / VERSION_FILE).is_file():
        return ModelPath(path, "registry-version", path / BUNDLE_DIR)
    if (path / RETRAIN_CONFIG_FILE).is_file():
        bundle = path / BUNDLE_DIR
        return ModelPath(path, "retrain-run", bundle if is_bundle(bundle) else None)
    if is_bundle(path):
        return ModelPath(path, "bundle", path)
    return ModelPath(path, "run" if path.is_dir() else "checkpoint", None)
