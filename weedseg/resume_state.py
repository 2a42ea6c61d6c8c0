"""A training run's resume state, saved so that a kill or a full disk never leaves it torn.

    RUN/checkpoints/resume/step_000500/model.safetensors  weights
    RUN/checkpoints/resume/step_000500/model.json         their sidecar (spec, task, meta)
    RUN/checkpoints/resume/step_000500/state.pt           optimizer, scheduler, RNG, step, extra
    RUN/checkpoints/resume/step_000500/manifest.json      the step and the sha256 of each part

The parts are written into a hidden temporary folder and fsynced, the manifest last; the folder
is fsynced and renamed into place, so one rename commits the whole step. The previous step is
kept until the next one is committed: a resume that finds the newest step damaged falls back to
it and says so. `checkpoints/last.*` (what export, evaluate and --init read) is refreshed from
the committed step afterwards, by a hard link where the file system has them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from weedseg.atomic import atomic_path, fsync_dir, fsync_file, write_atomic
from weedseg.bundle import sha256_file
from weedseg.checkpoint import (
    CheckpointMeta,
    checkpoint_sidecar,
    load_tensors,
    read_meta,
    read_sidecar,
    save_weights,
    sidecar_text,
)
from weedseg.errors import WeedsegError
from weedseg.models import ModelSpec

RESUME_DIR = "resume"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "weedseg-resume-state"
WEIGHTS, SIDECAR, STATE = "model.safetensors", "model.json", "state.pt"
KEEP = 2  # committed steps kept: the newest and the one to fall back to
LEGACY_STATE = "last.state.pt"  # the resume state of runs written before resume/ existed


@dataclass(frozen=True)
class ResumePoint:
    """One committed step under `checkpoints/resume/`."""

    path: Path
    step: int

    @property
    def stem(self) -> Path:
        """The checkpoint stem of its weights and sidecar."""
        return self.path / "model"


@dataclass
class LoadedResume:
    """What a resume reads back: weights, the torch state dict of `state.pt`, the sidecar meta."""

    step: int
    tensors: dict[str, torch.Tensor]
    state: dict[str, Any]
    meta: CheckpointMeta
    source: Path  # the folder (or legacy stem) it came from


def save_resume_point(
    checkpoints: Path,
    step: int,
    model: nn.Module,
    state: dict[str, Any],
    *,
    spec: ModelSpec,
    task: str,
    meta: CheckpointMeta,
) -> ResumePoint:
    """Commit weights, sidecar and `state` as step `step`; keep the previous step, drop older.

    A failed write (a full disk) leaves the committed steps as they were and raises.
    """
    sidecar = checkpoint_sidecar(model, spec=spec, task=task, meta=meta, weights=WEIGHTS)
    parts: dict[str, Callable[[Path], None]] = {
        WEIGHTS: lambda path: save_weights(model, path),
        SIDECAR: lambda path: path.write_text(sidecar_text(sidecar), encoding="utf-8"),
        STATE: lambda path: torch.save(state, path),
    }
    folder = checkpoints / RESUME_DIR
    try:
        point = _commit(folder, step, parts)
    except OSError as exc:
        kept = resume_points(folder)
        previous = f"step {kept[0].step} is kept" if kept else "no earlier step was saved"
        raise WeedsegError(
            f"{checkpoints}: could not save the checkpoint of step {step} ({exc}); {previous}: "
            "free some space and rerun with --resume"
        ) from exc
    for old in resume_points(folder)[KEEP:]:
        shutil.rmtree(old.path, ignore_errors=True)
    return point


def publish_checkpoint(point: ResumePoint, stem: Path) -> None:
    """Make `<stem>.safetensors` + `<stem>.json` the committed step's weights and sidecar."""
    weights = stem.with_suffix(".safetensors")
    with atomic_path(weights, durable=True) as tmp:
        tmp.unlink()
        try:
            os.link(point.path / WEIGHTS, tmp)
        except OSError:  # no hard links here (another file system, FAT): copy
            shutil.copyfile(point.path / WEIGHTS, tmp)
    sidecar = read_sidecar(point.stem) | {"weights": weights.name}
    write_atomic(stem.with_suffix(".json"), sidecar_text(sidecar), durable=True)


def resume_points(folder: Path) -> list[ResumePoint]:
    """The committed steps in `folder`, newest first (not yet checked against their manifest)."""
    if not folder.is_dir():
        return []
    points = [
        ResumePoint(path, int(path.name[5:]))
        for path in folder.iterdir()
        if path.name.startswith("step_") and path.name[5:].isdigit() and path.is_dir()
    ]
    return sorted(points, key=lambda p: p.step, reverse=True)


def load_resume_state(checkpoints: Path, *, is_main: bool = True) -> LoadedResume:
    """The newest complete step: its manifest names it and every part matches its sha256.

    A newer step that fails the checks is passed over with a warning naming both steps (and
    removed by rank 0, so it cannot shadow the good one). Runs written before `resume/` existed
    are read from `last.*` + `last.state.pt` when those agree on the step.
    """
    points = resume_points(checkpoints / RESUME_DIR)
    if not points:
        return _load_legacy(checkpoints)
    damaged: list[str] = []
    for point in points:
        loaded, problem = _load_point(point)
        if loaded is None:
            damaged.append(f"step {point.step} ({problem})")
            continue
        if damaged:
            warnings.warn(
                f"{checkpoints}: checkpoint {', '.join(damaged)} is incomplete or damaged; "
                f"resuming from the previous complete checkpoint, step {point.step}",
                RuntimeWarning,
                stacklevel=3,
            )
        if is_main:
            for bad in points[: len(damaged)]:
                shutil.rmtree(bad.path, ignore_errors=True)
            if _sidecar_step(checkpoints / "last") != point.step:
                publish_checkpoint(point, checkpoints / "last")
        return loaded
    raise WeedsegError(
        f"{checkpoints}: no complete checkpoint to resume from: {'; '.join(damaged)}"
    )


def _commit(folder: Path, step: int, parts: dict[str, Callable[[Path], None]]) -> ResumePoint:
    """Write `parts` and the manifest into a temporary folder and rename it to `step_NNNNNN`."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(".step_*.tmp"):  # left by a killed save (one writer per run)
        shutil.rmtree(stale, ignore_errors=True)
    target = folder / f"step_{step:06d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder))
    try:
        hashes = {}
        for name, write in parts.items():
            write(tmp / name)
            fsync_file(tmp / name)
            hashes[name] = sha256_file(tmp / name)
        manifest = {"format": MANIFEST_FORMAT, "step": step, "parts": hashes}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        fsync_file(tmp / MANIFEST)
        fsync_dir(tmp)
        if target.exists():  # the same step saved again (a resume that redid it)
            shutil.rmtree(target)
        os.rename(tmp, target)
        fsync_dir(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ResumePoint(target, step)


def _load_point(point: ResumePoint) -> tuple[LoadedResume | None, str]:
    """The point's parts when its manifest vouches for them, else (None, what is wrong)."""
    try:
        manifest = json.loads((point.path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, f"no readable {MANIFEST}: {exc}"
    if manifest.get("format") != MANIFEST_FORMAT or manifest.get("step") != point.step:
        return None, f"{MANIFEST} does not describe step {point.step}"
    parts = manifest.get("parts") or {}
    if set(parts) != {WEIGHTS, SIDECAR, STATE}:
        return None, f"{MANIFEST} lists {sorted(parts)}"
    for name, digest in parts.items():
        try:
            if sha256_file(point.path / name) != digest:
                return None, f"{name} differs from the one committed"
        except OSError as exc:
            return None, f"{name} unreadable: {exc}"
    try:
        loaded = _read_parts(point.stem, point.path / STATE, point.path)
    except (WeedsegError, OSError, RuntimeError, KeyError) as exc:
        return None, f"unreadable: {exc}"
    if loaded.step != point.step or _sidecar_step(point.stem) != point.step:
        return None, "its parts are from different steps"
    return loaded, ""


def _load_legacy(checkpoints: Path) -> LoadedResume:
    """`last.*` + `last.state.pt` of a run saved before `resume/` existed, if they agree."""
    state_path = checkpoints / LEGACY_STATE
    if not state_path.is_file():
        raise WeedsegError(
            f"{checkpoints.parent}: no checkpoint to resume from "
            f"({checkpoints / RESUME_DIR} is empty or missing)"
        )
    loaded = _read_parts(checkpoints / "last", state_path, checkpoints / "last")
    saved = _sidecar_step(checkpoints / "last")
    if saved != loaded.step:
        raise WeedsegError(
            f"{checkpoints}: {LEGACY_STATE} is from step {loaded.step} but last.json from step "
            f"{saved}: the run stopped while saving, and runs of this age keep no earlier "
            "resume state; start a new run (or --init from checkpoints/step_*)"
        )
    return loaded


def _read_parts(stem: Path, state_path: Path, source: Path) -> LoadedResume:
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    return LoadedResume(
        step=int(state["step"]),
        tensors=load_tensors(stem),
        state=state,
        meta=read_meta(stem),
        source=source,
    )


def _sidecar_step(stem: Path) -> int | None:
    """The `meta.step` a checkpoint's sidecar records (None: no readable sidecar)."""
    try:
        return read_meta(stem).step
    except WeedsegError:
        return None
