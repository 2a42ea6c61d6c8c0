"""What a `--base` path is: its training weights (for SMS and fine-tuning) and its bundle, if any.

Accepted (`weedseg.model_paths`): a registry version folder (bundle/ + checkpoint/), a retrain
run folder, a bundle folder whose manifest points at a checkpoint that is still on disk, a
training run folder or a checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from weedseg.bundle import load_bundle
from weedseg.checkpoint import read_sidecar, sidecar_meta
from weedseg.classes import ClassInfo
from weedseg.errors import WeedsegError
from weedseg.model_paths import resolve_model
from weedseg.models import PRESETS, ModelSpec


@dataclass(frozen=True)
class BaseModel:
    """The model a farm starts from."""

    path: Path  # as given
    checkpoint: Path  # segmentation checkpoint stem (weights + sidecar)
    bundle: Path | None  # verified bundle folder, when the base is served as one
    spec: ModelSpec
    classes: tuple[ClassInfo, ...]
    mean: list[float]
    std: list[float]
    input_scale: float = 1.0  # the scale the base works at; the retrained model keeps it

    @property
    def arch(self) -> str:
        """The spec as `weedseg pretrain --arch` accepts it (a preset name or arch:encoder)."""
        for name, spec in PRESETS.items():
            if spec == self.spec:
                return name
        if self.spec.decoder_channels is None:
            return f"{self.spec.arch}:{self.spec.encoder}"
        raise WeedsegError(f"{self.checkpoint}: model {self.spec} is neither a preset nor default")

    def describe(self) -> dict:
        return {
            "path": str(self.path.resolve()),
            "checkpoint": str(self.checkpoint.resolve()),
            "bundle": str(self.bundle.resolve()) if self.bundle else None,
            "arch": self.spec.to_dict(),
        }


def resolve_base(path: str | Path) -> BaseModel:
    """Find and verify the base's weights and bundle; a damaged bundle is a WeedsegError."""
    path = Path(path)
    if not path.exists():
        raise WeedsegError(f"--base {path}: no such bundle, registry version, run or checkpoint")
    model = resolve_model(path)
    # checksums: a modified bundle stops here
    bundle = load_bundle(model.bundle).root if model.bundle else None
    stem = model.checkpoint()
    sidecar = read_sidecar(stem)
    meta = sidecar_meta(sidecar)
    if sidecar.get("task") != "segmentation" or not meta.classes:
        raise WeedsegError(f"{stem}: the base must be a segmentation model (a fine-tuned run)")
    return BaseModel(
        path=path,
        checkpoint=stem,
        bundle=bundle,
        spec=ModelSpec.from_dict(sidecar["spec"]),
        classes=meta.classes,
        mean=[float(v) for v in meta.mean],
        std=[float(v) for v in meta.std],
        input_scale=float(meta.input_scale),
    )
