"""The canonical labeled dataset: `images/`, `masks/` (index PNG, 255 = ignore), `dataset.yaml`.

dataset.yaml:
    classes: [{name: soil, color: [0, 0, 0]}, {name: crop, color: [0, 255, 0]}, ...]
    splits: {train: [stem, ...], val: [...], test: [...]}
    images: {stem: "relative/path/in/images.jpg", ...}   # file name of each image under images/
    source: free text (converter, origin, licence)

A sample is named by its stem; its mask is `masks/<stem>.png`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from weedseg.atomic import write_atomic
from weedseg.classes import DEFAULT_CLASSES, ClassInfo

DATASET_FILE = "dataset.yaml"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")


@dataclass
class DatasetInfo:
    """What `dataset.yaml` says about a labeled dataset rooted at `root`."""

    root: Path
    classes: tuple[ClassInfo, ...] = DEFAULT_CLASSES
    splits: dict[str, list[str]] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)
    source: str = ""

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    def image_path(self, stem: str) -> Path:
        return self.root / "images" / self.images[stem]

    def mask_path(self, stem: str) -> Path:
        return self.root / "masks" / f"{stem}.png"

    def split(self, name: str) -> list[str]:
        if name not in self.splits:
            raise KeyError(f"{self.root}: no split {name!r} (have {sorted(self.splits)})")
        return list(self.splits[name])

    @classmethod
    def load(cls, root: str | Path) -> DatasetInfo:
        root = Path(root)
        meta_path = root / DATASET_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"{root} is not a weedseg dataset: {DATASET_FILE} is missing")
        meta = yaml.safe_load(meta_path.read_text(encoding="utf-8")) or {}
        classes = tuple(ClassInfo.from_dict(c) for c in meta.get("classes", []))
        return cls(
            root=root,
            classes=classes or DEFAULT_CLASSES,
            splits={k: [str(s) for s in v or []] for k, v in (meta.get("splits") or {}).items()},
            images={str(k): str(v) for k, v in (meta.get("images") or {}).items()},
            source=str(meta.get("source", "")),
        )

    def save(self) -> None:
        meta = {
            "classes": [c.to_dict() for c in self.classes],
            "splits": self.splits,
            "images": self.images,
            "source": self.source,
        }
        write_atomic(self.root / DATASET_FILE, yaml.safe_dump(meta, sort_keys=False))


def linked_dataset(
    source: str | Path, root: str | Path, splits: dict[str, list[str]], note: str
) -> DatasetInfo:
    """A dataset at `root` that lists only `splits`, its images/ and masks/ folders linked to
    `source`'s (folds and label subsets of one dataset for experiments, no copies); `note`
    says in its source line what was taken."""
    source, root = Path(source), Path(root)
    info = DatasetInfo.load(source)
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("images", "masks"):
        link = root / sub
        if not link.exists():
            link.symlink_to((source / sub).resolve(), target_is_directory=True)
    listed = {stem for stems in splits.values() for stem in stems}
    subset = DatasetInfo(
        root=root,
        classes=info.classes,
        splits=splits,
        images={stem: name for stem, name in info.images.items() if stem in listed},
        source=f"{info.source} ({note})",
    )
    subset.save()
    return subset


def find_images(root: str | Path) -> list[Path]:
    """All image files under `root`, recursively, sorted (an unlabeled dataset is just this)."""
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
