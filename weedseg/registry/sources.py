"""What can be registered: a `weedseg retrain` run folder or a bundle folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weedseg.bundle import read_manifest
from weedseg.errors import WeedsegError
from weedseg.model_paths import ModelPath, bundle_checkpoint, resolve_model

REPORT_FILE = "report.json"


@dataclass(frozen=True)
class Candidate:
    """A model about to be registered: its bundle, its weights and what is known about it."""

    bundle: Path
    checkpoint: Path | None
    info: dict[str, Any]  # source, evaluation (farm validation split), lineage


def read_candidate(path: str | Path) -> Candidate:
    """A retrain run (its bundle, checkpoint, farm scores and lineage) or a plain bundle."""
    model = resolve_model(path)
    if model.kind == "retrain-run" and model.bundle and (model.path / REPORT_FILE).is_file():
        return _from_retrain_run(model)
    if model.kind == "bundle":
        return _from_bundle(model.path)
    raise WeedsegError(
        f"{path}: not a version id, a `weedseg retrain` run folder or a bundle folder"
    )


def _from_retrain_run(run: ModelPath) -> Candidate:
    report = json.loads((run.path / REPORT_FILE).read_text(encoding="utf-8"))
    new, split = report["new"]["scores"], report["split"]
    try:
        checkpoint = run.checkpoint()
    except WeedsegError:  # its fine-tuning run was deleted: the bundle is registered alone
        checkpoint = None
    evaluation = {
        "data": split["data"],
        "split": split["split"],
        "stems": split["stems"],
        "mIoU": new["mIoU"],
        "per_class": {name: c["iou"] for name, c in new["per_class"].items()},
        # every photo scored by a fold model that never saw it, the base on the same photos;
        # the shipped model trained on all of them, so only these recorded scores are fair
        "cross_validated": True,
        "base_mIoU": report["base"]["scores"]["mIoU"],
        "base_bundle": report["base"]["model"]["bundle"],
    }
    lineage = {
        "base": report["base"]["model"],
        "base_mIoU_on_split": report["base"]["scores"]["mIoU"],
        "data": report["data"],
        "budget": report["budget"],
        "config": report["config"],
    }
    return Candidate(
        bundle=run.bundle,
        checkpoint=checkpoint,
        info={"source": str(run.path.resolve()), "evaluation": evaluation, "lineage": lineage},
    )


def _from_bundle(bundle: Path) -> Candidate:
    manifest = read_manifest(bundle)
    return Candidate(
        bundle=bundle,
        checkpoint=bundle_checkpoint(bundle),
        info={
            "source": str(bundle.resolve()),
            "evaluation": None,
            "lineage": {"provenance": manifest.provenance},
        },
    )
