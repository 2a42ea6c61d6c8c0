"""Model checkpoints: `<path>.safetensors` (weights) + `<path>.json` (spec, task, metadata).

The JSON sidecar holds the architecture, so a checkpoint rebuilds its own model:

    save_checkpoint("runs/pre/checkpoints/last", model, spec=spec, task="reconstruction",
                    meta=CheckpointMeta(mean=[...], std=[...], step=1000))
    loaded = load_checkpoint("runs/pre")                    # a run folder, a stem or either file
    seg = build_model(loaded.spec, out_channels=3)
    print(transfer_weights(seg, "runs/pre").summary())      # what carried over, what is new

Weights are read with safetensors only (no pickle); both files are written atomically and
fsynced, the JSON last, so a checkpoint whose JSON exists is complete. A training run's resume
state (weights with optimizer, scheduler, RNG and step) is committed whole by
`weedseg.resume_state`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from weedseg.atomic import atomic_path, write_atomic
from weedseg.classes import ClassInfo
from weedseg.errors import WeedsegError
from weedseg.model_paths import checkpoint_stem, resolve_checkpoint
from weedseg.models import ModelSpec, build_model, head_classes

FORMAT = "weedseg-checkpoint"
FORMAT_VERSION = 1
TASKS = ("reconstruction", "segmentation")


@dataclass
class CheckpointMeta:
    """What a checkpoint says about its training: the sidecar's `meta`, typed.

    Written by pretrain and finetune; read by finetune, evaluate, export, retrain, bench and
    suggest. Every field is optional, so a sidecar from an older version reads with defaults for
    what it lacks; keys this version does not know travel in `extra` and are written back as
    they were. On disk `meta` stays a plain JSON object with the same keys as before.
    """

    mean: list[float] | None = None  # dataset normalisation, 0..1 RGB
    std: list[float] | None = None
    classes: tuple[ClassInfo, ...] = ()  # segmentation: one per output channel
    input_scale: float = 1.0  # photos are shrunk by this before tiling (fine-tuned at it)
    step: int | None = None  # the optimizer step the weights are from
    seed: int | None = None
    score: float | None = None  # checkpoints/best: the validation score that chose it
    metrics: dict[str, Any] | None = None  # fine-tuning: val_mIoU and the whole val report
    data: str | dict[str, Any] | None = None  # pretraining: the images; fine-tuning: the split
    init: dict[str, Any] | None = None  # fine-tuning: the source checkpoint, what carried over
    loss: str | None = None  # fine-tuning loss
    class_weights: list[float] | None = None  # fine-tuning: the loss's class weights
    images: int | None = None  # pretraining: images in the pool
    phase: int | None = None  # pretraining: the schedule phase the weights are from
    config: dict[str, Any] = field(default_factory=dict)  # the run's config, as saved
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know

    @classmethod
    def from_dict(cls, meta: dict[str, Any] | None) -> CheckpointMeta:
        """Read a sidecar's `meta` (missing keys -> defaults, unknown keys -> `extra`)."""
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in (meta or {}).items() if k in known}
        if "classes" in values:
            values["classes"] = tuple(ClassInfo.from_dict(c) for c in values["classes"] or [])
        extra = {k: v for k, v in (meta or {}).items() if k not in known}
        return cls(**values, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """The sidecar's `meta`: the fields that differ from their defaults, then `extra`."""
        blank = CheckpointMeta()
        meta = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "extra" and getattr(self, f.name) != getattr(blank, f.name)
        }
        if "classes" in meta:
            meta["classes"] = [c.to_dict() for c in self.classes]
        return meta | self.extra

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]


@dataclass
class LoadedCheckpoint:
    """A model rebuilt from a checkpoint, with what its sidecar says about it."""

    model: nn.Module
    spec: ModelSpec
    task: str
    meta: CheckpointMeta
    path: Path  # stem: `path.with_suffix(".json")` is the sidecar


@dataclass
class TransferReport:
    """What `transfer_weights` carried over, what the model keeps fresh, what it dropped."""

    carried: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # in the source, unused (name or shape)

    def summary(self) -> str:
        lines = [
            f"carried {len(self.carried)} tensors, new {len(self.new)}, "
            f"skipped {len(self.skipped)} from the source"
        ]
        if self.new:
            lines.append("new: " + ", ".join(self.new))
        if self.skipped:
            lines.append("skipped: " + ", ".join(self.skipped))
        return "\n".join(lines)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside DDP / torch.compile wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def state_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict as contiguous CPU tensors (safetensors-ready)."""
    return {k: v.detach().cpu().contiguous() for k, v in unwrap(model).state_dict().items()}


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    spec: ModelSpec,
    task: str,
    meta: CheckpointMeta | dict[str, Any] | None = None,
) -> Path:
    """Write `<path>.safetensors` and `<path>.json` atomically (fsynced); return the stem.

    `meta` is a CheckpointMeta, or a sidecar's raw `meta` dict written as it is."""
    stem = checkpoint_stem(path)
    weights = stem.with_suffix(".safetensors")
    sidecar = checkpoint_sidecar(model, spec=spec, task=task, meta=meta, weights=weights.name)
    with atomic_path(weights, durable=True) as tmp:
        save_weights(model, tmp)
    write_atomic(stem.with_suffix(".json"), sidecar_text(sidecar), durable=True)
    return stem


def save_weights(model: nn.Module, path: Path) -> None:
    """The model's weights as one safetensors file at `path`."""
    save_file(state_tensors(model), str(path))


def checkpoint_sidecar(
    model: nn.Module,
    *,
    spec: ModelSpec,
    task: str,
    meta: CheckpointMeta | dict[str, Any] | None,
    weights: str,
) -> dict[str, Any]:
    """The JSON sidecar of a checkpoint whose weights file is named `weights`."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "spec": spec.to_dict(),
        "task": task,
        "out_channels": _out_channels(model),
        "weights": weights,
        "meta": meta.to_dict() if isinstance(meta, CheckpointMeta) else meta or {},
    }


def sidecar_text(sidecar: dict[str, Any]) -> str:
    """A sidecar as the JSON text saved beside the weights."""
    return json.dumps(sidecar, indent=2, default=_jsonable)


def read_sidecar(stem: str | Path) -> dict[str, Any]:
    """The parsed JSON sidecar of a checkpoint stem, checked for format."""
    sidecar_path = checkpoint_stem(stem).with_suffix(".json")
    try:
        sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise WeedsegError(f"{sidecar_path}: unreadable checkpoint metadata ({exc})") from exc
    if sidecar.get("format") != FORMAT:
        raise WeedsegError(f"{sidecar_path}: not a weedseg checkpoint")
    return sidecar


def sidecar_meta(sidecar: dict[str, Any]) -> CheckpointMeta:
    """The typed `meta` of a parsed sidecar (`read_sidecar`)."""
    return CheckpointMeta.from_dict(sidecar.get("meta"))


def read_meta(stem: str | Path) -> CheckpointMeta:
    """The typed `meta` of a checkpoint stem's sidecar."""
    return sidecar_meta(read_sidecar(stem))


def load_tensors(stem: str | Path) -> dict[str, torch.Tensor]:
    """The weights of a checkpoint stem (safetensors, never pickle)."""
    weights = checkpoint_stem(stem).with_suffix(".safetensors")
    if not weights.is_file():
        raise WeedsegError(f"{weights}: checkpoint weights missing")
    try:
        return load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise WeedsegError(f"{weights}: unreadable checkpoint weights ({exc})") from exc


def load_checkpoint(path_or_run: str | Path, which: str | None = None) -> LoadedCheckpoint:
    """Rebuild the model a checkpoint describes and load its weights (strictly)."""
    stem = resolve_checkpoint(path_or_run, which)
    sidecar = read_sidecar(stem)
    spec = ModelSpec.from_dict(sidecar["spec"])
    model = build_model(spec, out_channels=int(sidecar["out_channels"]))
    tensors = load_tensors(stem)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise WeedsegError(f"{stem}: weights do not match {spec}: {exc}") from exc
    return LoadedCheckpoint(
        model=model, spec=spec, task=sidecar["task"], meta=sidecar_meta(sidecar), path=stem
    )


def transfer_weights(
    model: nn.Module, source: str | Path | dict[str, torch.Tensor], which: str | None = None
) -> TransferReport:
    """Load every source tensor whose name and shape match the model's; report the rest."""
    if isinstance(source, dict):
        tensors = source
    else:
        tensors = load_tensors(resolve_checkpoint(source, which))
    target = unwrap(model)
    own = target.state_dict()
    report = TransferReport()
    matched = {}
    for name, tensor in tensors.items():
        if name in own and own[name].shape == tensor.shape:
            matched[name] = tensor
            report.carried.append(name)
        else:
            report.skipped.append(name)
    report.new = [name for name in own if name not in matched]
    target.load_state_dict(matched, strict=False)
    return report


def _out_channels(model: nn.Module) -> int:
    return head_classes(unwrap(model))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"not JSON-serialisable in checkpoint metadata: {type(value).__name__}")
