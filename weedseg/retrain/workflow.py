"""`retrain(cfg)`: labels -> data -> pretrain (SMS from the base) -> init -> fold-1..fold-K ->
compare -> finetune -> export -> report, each stage skipped when it finished before and resumed
when it was killed.

Base and new are compared by cross-validation on the farm's labelled photos: each fold model is
fine-tuned from the same init with the shipped model's recipe on the other folds' photos and
scored, with the base, on its held-out photos. The shipped model is then fine-tuned on all of
them, so no label is lost to validation; the comparison estimates how it does on new photos.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import yaml

from weedseg.atomic import atomic_dir, write_atomic
from weedseg.data.format import DatasetInfo, find_images
from weedseg.errors import WeedsegError
from weedseg.evaluate.metrics import json_number
from weedseg.imageio import read_image, read_mask, write_image
from weedseg.model_paths import BUNDLE_DIR, RETRAIN_CONFIG_FILE, RETRAIN_FINETUNE_RUN
from weedseg.resume_flags import WHERE_IT_RUNS
from weedseg.retrain.base_model import BaseModel, resolve_base
from weedseg.retrain.config import RetrainConfig
from weedseg.retrain.farm_data import build_training_set, farm_labels, fold_name
from weedseg.retrain.report import comparison_panel, pick_overlay_stems, write_report
from weedseg.retrain.scoring import Segmenter, SplitScores
from weedseg.retrain.stages import StageBook

CONFIG_FILE = RETRAIN_CONFIG_FILE  # marks a retrain run folder (weedseg.model_paths)


@dataclass
class RetrainResult:
    run_dir: Path
    bundle: Path
    report: dict
    new_beats_base: bool


def load_config(cfg: RetrainConfig) -> RetrainConfig:
    """The run's saved config when resuming (where it runs may change), else `cfg`.

    `weedseg retrain --resume` has already refused flags that conflict with it."""
    saved = Path(cfg.out) / CONFIG_FILE
    if not cfg.resume:
        if saved.is_file():
            raise WeedsegError(f"{cfg.out} already holds a retraining run: use --resume")
        return cfg
    if not saved.is_file():
        raise WeedsegError(f"{cfg.out}: nothing to resume (no {CONFIG_FILE})")
    values = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
    where = {name: getattr(cfg, name) for name in WHERE_IT_RUNS}
    return RetrainConfig.from_dict(values | where | {"resume": True})


def retrain(cfg: RetrainConfig, log: Callable[[str], None] = print) -> RetrainResult:
    """Run (or resume) the whole workflow into `cfg.out`."""
    cfg = load_config(cfg)
    photos = find_images(cfg.images)
    if not photos:
        raise WeedsegError(f"--images {cfg.images}: no images found (the farm's unlabeled photos)")
    if not Path(cfg.labels).exists():
        raise WeedsegError(f"--labels {cfg.labels}: no such dataset or labels export")
    base = resolve_base(cfg.base)  # a damaged bundle stops here, before anything is written
    out = Path(cfg.out).resolve()  # the report and the registry keep absolute paths
    out.mkdir(parents=True, exist_ok=True)
    book = StageBook(out, log)
    steps = cfg.steps
    labels = book.run("labels", lambda: _labels(cfg, base, out))  # bad labels: no run is left
    if not cfg.resume:
        write_atomic(out / CONFIG_FILE, yaml.safe_dump(asdict(cfg), sort_keys=False))
    data = book.run("data", lambda: _data(cfg, labels, out))
    count = len(data["folds"])
    pretrain_s, finetune_s = cfg.stage_seconds(count + 1)  # K fold models + the shipped one
    pretrain = book.run("pretrain", lambda: _pretrain(cfg, base, out, len(photos), pretrain_s, log))
    init = book.run("init", lambda: {"checkpoint": str(_init_checkpoint(base, pretrain, out))})
    folds = [
        book.run(
            fold_name(k),
            lambda k=k: _fold(cfg, base, out, Path(init["checkpoint"]), k, finetune_s, log),
        )
        for k in range(1, count + 1)
    ]
    scores = book.run("compare", lambda: _compare(cfg, base, out, folds))
    finetune = book.run(
        "finetune",
        lambda: _finetune(
            cfg, base, out, Path(init["checkpoint"]), "train", out / RETRAIN_FINETUNE_RUN,
            finetune_s, log,
        ),
    )  # fmt: skip
    bundle = book.run("export", lambda: _export(cfg, out))
    stages = {"labels": labels, "data": data, "pretrain": pretrain, "init": init}
    stages |= {fold_name(k): f for k, f in enumerate(folds, start=1)} | {"compare": scores}
    labelled = data["farm_labels"]
    report = {
        "base": {
            "model": base.describe(),
            "scored_from": "bundle, ONNX Runtime" if base.bundle else "checkpoint, PyTorch",
            "scores": scores["base"],
        },
        "new": {
            "checkpoint": finetune["checkpoint"],
            "bundle": bundle["bundle"],
            "scored_from": f"{count} fold models (checkpoints, PyTorch), each on its held-out "
            "photos",
            "scores": scores["new"],
        },
        "new_beats_base": _beats(scores["new"]["mIoU"], scores["base"]["mIoU"]),
        "comparison": {
            "method": "leave-one-out" if count == labelled else f"{count}-fold",
            "folds": count,
            "images": labelled,
            "pooled": "one confusion matrix over every held-out photo",
            "fold_stems": data["folds"],
        },
        "split": {  # the photos the comparison scored (all labelled; the shipped model saw them)
            "data": str(out / "data"),
            "split": "farm",
            "images": labelled,
            "stems": sorted(s for fold in data["folds"] for s in fold),
        },
        "data": {"farm_labels": labelled, "base_train": data["base_train"]}
        | {"labels": labels["dataset"]},
        "budget": asdict(steps)
        | {"images": len(photos), "budget": cfg.budget, "finetunes": count + 1},
        "seconds": {name: s["seconds"] for name, s in stages.items()}
        | {"finetune": finetune["seconds"], "export": bundle["seconds"]},
        "overlays": scores["overlays"],
        "config": asdict(cfg),
    }
    write_report(out, report)
    log(f"report: {out / 'report.md'}")
    return RetrainResult(out, Path(bundle["bundle"]), report, report["new_beats_base"])


def _beats(new: float | None, base: float | None) -> bool:
    return new is not None and (base is None or new > base)


def _labels(cfg: RetrainConfig, base: BaseModel, out: Path) -> dict:
    info = farm_labels(cfg, base.classes, out / "labels")
    return {"dataset": str(info.root), "images": len(info.images), "splits": list(info.splits)}


def _data(cfg: RetrainConfig, labels: dict, out: Path) -> dict:
    farm = DatasetInfo.load(labels["dataset"])
    base_data = DatasetInfo.load(cfg.base_data) if cfg.base_data else None
    return build_training_set(farm, base_data, cfg, out / "data")


def _how_it_runs(cfg: RetrainConfig, out: Path) -> dict:
    """The settings every training stage takes as they are from retrain: seed, machine, precision
    and one decoded-photo cache that all stages share."""
    return {
        "seed": cfg.seed,
        "workers": cfg.workers,
        "device": cfg.device,
        "precision": cfg.precision,
        "memory_format": cfg.memory_format,
        "cache_gb": cfg.cache_gb,
        "cache_dir": cfg.cache_dir or str(out / "cache" / "photos"),
    }


def _fresh_or_resumable(run: Path) -> bool:
    """Whether a stage's run folder can resume; a run killed before its first checkpoint is
    removed and starts over."""
    if (run / "checkpoints" / "last.json").is_file() and (run / "config.yaml").is_file():
        return True
    shutil.rmtree(run, ignore_errors=True)
    return False


def _pretrain(
    cfg: RetrainConfig, base: BaseModel, out: Path, photos: int, seconds: float, log
) -> dict:
    """Continue SMS pretraining from the base's weights on the farm's photos."""
    steps = cfg.steps.pretrain_steps
    if steps == 0:
        return {"run": None, "steps": 0}
    from weedseg.pretrain import PretrainConfig, pretrain

    run = out / "pretrain"
    pcfg = PretrainConfig(
        images=cfg.images,
        out=str(run),
        arch=base.arch,
        init=str(base.checkpoint),
        steps=0 if cfg.time else steps,
        time=seconds,
        partitions=max(1, min(10, steps // 20)),
        batch=cfg.batch,
        size=cfg.size,
        crop_scale=cfg.crop_scale,
        input_scale=base.input_scale,  # the photos at the scale the base and its retrain see
        lr=cfg.pretrain_lr,
        mask_ratio=cfg.mask_ratio,
        patch=cfg.patch,
        **_how_it_runs(cfg, out),
        image_every=max(steps // 4, 1),
        checkpoint_every=max(steps // 10, 1),
        resume=_fresh_or_resumable(run),
    )
    result = pretrain(pcfg, log=log)
    return {"run": str(run), "steps": result.steps, "final_loss": result.final_loss}


def _init_checkpoint(base: BaseModel, pretrain: dict, out: Path) -> Path:
    """The base segmenter with its encoder replaced by the farm-adapted (SMS) encoder.

    The encoder (and its normalisation statistics) has seen the farm's photos; the decoder and
    head keep the base's segmentation skill, so fine-tuning starts from a working segmenter.
    """
    from weedseg.checkpoint import load_checkpoint, load_tensors, save_checkpoint

    loaded = load_checkpoint(base.checkpoint)
    carried = 0
    if pretrain["run"]:
        own = loaded.model.state_dict()
        adapted = load_tensors(Path(pretrain["run"]) / "checkpoints" / "last")
        encoder = {
            k: v for k, v in adapted.items()
            if k.startswith("encoder.") and k in own and own[k].shape == v.shape
        }  # fmt: skip
        loaded.model.load_state_dict(encoder, strict=False)
        carried = len(encoder)
    init = {"base": str(base.checkpoint), "sms_encoder_tensors": carried}
    meta = replace(loaded.meta, init=init)
    return save_checkpoint(
        out / "init" / "model", loaded.model, spec=loaded.spec, task="segmentation", meta=meta
    )


def _finetune(
    cfg: RetrainConfig,
    base: BaseModel,
    out: Path,
    init: Path,
    train_split: str,
    run: Path,
    seconds: float,
    log,
) -> dict:
    """Fine-tune `init` on `train_split` of the run's dataset with the shipped model's recipe:
    every image trains, no validation, the last step is kept (FinetuneConfig.final)."""
    from weedseg.finetune.config import FinetuneConfig
    from weedseg.finetune.trainer import run_finetune

    steps = cfg.steps.finetune_steps
    fcfg = FinetuneConfig(
        data=str(out / "data"),
        out=str(run),
        init=str(init),
        steps=steps,
        time=seconds,
        batch=cfg.batch,
        size=cfg.size,
        crop_scale=cfg.crop_scale,
        input_scale=base.input_scale,
        lr=cfg.finetune_lr,
        warmup=min(50, steps // 10),
        train_split=train_split,
        final=True,
        val_every=steps,
        **_how_it_runs(cfg, out),
        resume=_fresh_or_resumable(run),
    )
    result = run_finetune(fcfg, log=log)
    return {"run": str(run), "checkpoint": str(result.best_checkpoint), "steps": result.steps}


def _fold(
    cfg: RetrainConfig, base: BaseModel, out: Path, init: Path, k: int, seconds: float, log
) -> dict:
    """Fold `k`: fine-tune on the other folds' photos, then score base and fold model on its
    held-out photos (their confusion matrices are pooled over all folds by `_compare`)."""
    name = fold_name(k)
    fold = _finetune(cfg, base, out, init, f"{name}-train", out / "folds" / name, seconds, log)
    info = DatasetInfo.load(out / "data")
    held = info.split(name)
    base_model = Segmenter.from_base(base, cfg.tile, cfg.overlap, cfg.device)
    new_model = Segmenter.from_checkpoint(
        Path(fold["checkpoint"]), cfg.tile, cfg.overlap, cfg.device
    )
    return fold | {
        "held_out": held,
        "base": base_model.score(info, held).to_record(),
        "new": new_model.score(info, held).to_record(),
    }


def _compare(cfg: RetrainConfig, base: BaseModel, out: Path, folds: list[dict]) -> dict:
    """Base vs new over every held-out photo (pooled confusion matrices); overlays of the most
    telling photos, each drawn with the fold model that did not train on it."""
    info = DatasetInfo.load(out / "data")
    base_scores = SplitScores.pooled([SplitScores.from_record(f["base"]) for f in folds])
    new_scores = SplitScores.pooled([SplitScores.from_record(f["new"]) for f in folds])
    chosen = pick_overlay_stems(base_scores.per_image, new_scores.per_image, cfg.overlays)
    base_model = Segmenter.from_base(base, cfg.tile, cfg.overlap, cfg.device)
    fold_of = {stem: f for f in folds for stem in f["held_out"]}
    overlays = []
    with atomic_dir(out / "overlays", force=True) as tmp:
        for stem in chosen:
            fold_model = Segmenter.from_checkpoint(
                Path(fold_of[stem]["checkpoint"]), cfg.tile, cfg.overlap, cfg.device
            )
            image = read_image(info.image_path(stem))
            panel = comparison_panel(
                image,
                read_mask(info.mask_path(stem)),
                base_model.predict(image),
                fold_model.predict(image),
                info.classes,
                (base_scores.per_image[stem], new_scores.per_image[stem]),
            )
            write_image(tmp / f"{stem}.png", panel)
            overlays.append(f"overlays/{stem}.png")
    names = info.class_names
    per_image = {
        s: {
            "base": json_number(base_scores.per_image.get(s, float("nan"))),
            "new": json_number(new_scores.per_image.get(s, float("nan"))),
        }
        for s in sorted(fold_of)
    }
    write_atomic(out / "per_image.json", json.dumps(per_image, indent=2))
    return {
        "base": base_scores.to_dict(names),
        "new": new_scores.to_dict(names),
        "overlays": overlays,
    }


def _export(cfg: RetrainConfig, out: Path) -> dict:
    """The new model as a verified bundle (dynamic sizes, checked on farm images)."""
    from weedseg.export.bundle_export import export_bundle
    from weedseg.export.config import ExportConfig

    manifest = export_bundle(
        ExportConfig(
            source=str(out / RETRAIN_FINETUNE_RUN),
            out=str(out / BUNDLE_DIR),
            imgsz=cfg.export_size,
            dynamic=True,
            min_size=min(64, cfg.export_size),
            max_size=max(1024, cfg.export_size),
            name=out.name,
            verify=str(out / "data"),
            verify_n=4,
            force=True,
        )
    )
    return {"bundle": str(out / BUNDLE_DIR), "model_sha256": manifest.files["model.onnx"]}
