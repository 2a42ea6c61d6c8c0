"""The farm's labels as a dataset on the base classes, and the fine-tuning and cross-validation
splits built from them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from weedseg.atomic import atomic_dir
from weedseg.classes import ClassInfo
from weedseg.data.format import DATASET_FILE, DatasetInfo
from weedseg.errors import WeedsegError
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


def fold_name(index: int) -> str:
    """The split of fold `index`'s held-out farm photos (1-based); its model trains on
    `fold_name(index) + "-train"`."""
    return f"fold-{index}"


def assign_folds(stems: Sequence[str], count: int, seed: int) -> list[list[str]]:
    """`stems` dealt into `count` folds after one seeded shuffle: every stem is held out by
    exactly one fold, fold sizes differ by one at most (`count == len(stems)`: leave-one-out)."""
    if not 2 <= count <= len(stems):
        raise WeedsegError(f"{count} folds over {len(stems)} photos: need 2 <= folds <= photos")
    order = np.random.default_rng(seed).permutation(len(stems))
    return [sorted(stems[i] for i in order[k::count]) for k in range(count)]


def build_training_set(
    farm: DatasetInfo, base_data: DatasetInfo | None, cfg: RetrainConfig, dst: Path
) -> dict:
    """Write `dst`: every labelled farm photo (split `farm`), the shipped model's `train` (all of
    them, + a share of the base's train) and, per fold, its held-out photos and its train.

    Files are hard-linked where the file system allows (copied otherwise); stems are prefixed
    `farm-` / `base-` so two sources never clash.
    """
    labelled = sorted({stem for stems in farm.splits.values() for stem in stems})
    folds = assign_folds(labelled, cfg.fold_count(len(labelled)), cfg.seed)
    mixed: list[str] = []
    if base_data is not None:
        check_same_classes(base_data, farm.classes)
        pool = base_data.splits.get("train") or []
        count = min(len(pool), round(cfg.base_mix * len(labelled)))
        order = np.random.default_rng(cfg.seed).permutation(len(pool))[:count]
        mixed = sorted(pool[i] for i in order)
    farm_stems, base_stems = [FARM + s for s in labelled], [BASE + s for s in mixed]
    splits = {"farm": farm_stems, "train": sorted(farm_stems + base_stems)}
    for index, held in enumerate(folds, start=1):
        splits[fold_name(index)] = [FARM + s for s in held]
        rest = [FARM + s for s in labelled if s not in held] + base_stems
        splits[fold_name(index) + "-train"] = sorted(rest)
    images: dict[str, str] = {}
    with atomic_dir(dst, force=True) as tmp:
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        for prefix, info, stems in ((FARM, farm, labelled), (BASE, base_data, mixed)):
            for stem in stems:
                name = prefix + stem
                image = info.image_path(stem)
                images[name] = name + image.suffix.lower()
                _link(image, tmp / "images" / images[name])
                _link(info.mask_path(stem), tmp / "masks" / f"{name}.png")
        DatasetInfo(
            root=tmp,
            classes=farm.classes,
            splits=splits,
            images=images,
            source=f"weedseg retrain: farm labels {farm.root}"
            + (f" + {len(mixed)} images of {base_data.root}" if base_data else ""),
        ).save()
    return {
        "farm_labels": len(labelled),
        "base_train": len(mixed),
        "folds": [[FARM + s for s in held] for held in folds],
    }


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
