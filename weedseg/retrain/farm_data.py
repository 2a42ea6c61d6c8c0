"""The farm's labels as a dataset on the base classes, and the fine-tuning set built from them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from weedseg.atomic import atomic_dir
from weedseg.classes import ClassInfo
from weedseg.data.format import DATASET_FILE, DatasetInfo
from weedseg.errors import WeedsegError
from weedseg.finetune.config import FinetuneConfig
from weedseg.finetune.data import plan_data
from weedseg.labels import import_labels, parse_rename
from weedseg.retrain.config import RetrainConfig

FARM, BASE = "farm-", "base-"  # stem prefixes in the combined dataset


def farm_labels(cfg: RetrainConfig, classes: tuple[ClassInfo, ...], dst: Path) -> DatasetInfo:
    """The farm's labeled dataset: used as is when canonical, else imported into `dst`."""
    labels = Path(cfg.labels)
    if (labels / DATASET_FILE).is_file():
        info = DatasetInfo.load(labels)
        check_same_classes(info, classes)
        return info
    import_labels(
        labels,
        dst,
        classes=classes,
        rename=parse_rename(cfg.label_map),
        fmt=cfg.labels_format,
        force=True,
    )
    return DatasetInfo.load(dst)


def check_same_classes(info: DatasetInfo, classes: tuple[ClassInfo, ...]) -> None:
    """A labeled dataset must use the base model's classes in the same order."""
    want = [c.name for c in classes]
    unknown = [n for n in info.class_names if n not in want]
    if unknown:
        raise WeedsegError(
            f"{info.root}: unknown class name(s) {', '.join(unknown)}; the base model knows "
            f"{', '.join(want)} (re-import the labels with --map NAME=CLASS)"
        )
    if info.class_names != want:
        raise WeedsegError(
            f"{info.root}: classes {info.class_names} are in another order than the base "
            f"model's {want}; re-import the labels so indices match"
        )


def farm_split(info: DatasetInfo, cfg: RetrainConfig) -> tuple[list[str], list[str], str]:
    """(train stems, validation stems, where validation came from), as fine-tuning plans it."""
    plan = plan_data(
        info,
        FinetuneConfig(
            data=str(info.root), out="", val_split=cfg.val_split, val_share=cfg.val_share
        ),
    )
    if not plan.val:
        raise WeedsegError(f"{info.root}: no validation images")
    return plan.train, plan.val, plan.val_source


def build_training_set(
    farm: DatasetInfo, base_data: DatasetInfo | None, cfg: RetrainConfig, dst: Path
) -> dict:
    """Write `dst`: farm train (+ a share of the base train) and the farm validation split.

    Files are hard-linked where the file system allows (copied otherwise); stems are prefixed
    `farm-` / `base-` so two sources never clash.
    """
    train, val, val_source = farm_split(farm, cfg)
    mixed: list[str] = []
    if base_data is not None:
        check_same_classes(base_data, farm.classes)
        pool = base_data.splits.get("train") or []
        count = min(len(pool), round(cfg.base_mix * len(train)))
        order = np.random.default_rng(cfg.seed).permutation(len(pool))[:count]
        mixed = sorted(pool[i] for i in order)
    images: dict[str, str] = {}
    with atomic_dir(dst, force=True) as tmp:
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        for prefix, info, stems in ((FARM, farm, train + val), (BASE, base_data, mixed)):
            for stem in stems:
                name = prefix + stem
                image = info.image_path(stem)
                images[name] = name + image.suffix.lower()
                _link(image, tmp / "images" / images[name])
                _link(info.mask_path(stem), tmp / "masks" / f"{name}.png")
        DatasetInfo(
            root=tmp,
            classes=farm.classes,
            splits={
                "train": sorted([FARM + s for s in train] + [BASE + s for s in mixed]),
                "val": sorted(FARM + s for s in val),
            },
            images=images,
            source=f"weedseg retrain: farm labels {farm.root}"
            + (f" + {len(mixed)} images of {base_data.root}" if base_data else ""),
        ).save()
    return {
        "farm_train": len(train),
        "farm_val": len(val),
        "val_source": val_source,
        "base_train": len(mixed),
        "val_stems": sorted(FARM + s for s in val),
    }


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
