"""CWFID (Haug & Ostermann 2014): colour annotations + official split -> canonical dataset."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import yaml

from weedseg.data.convert.masks import Color, colors_to_index, default_color_map
from weedseg.data.convert.pairing import pair_files
from weedseg.data.convert.writer import ConversionResult, Sample, write_dataset
from weedseg.errors import WeedsegError
from weedseg.imageio import read_image

SPLIT_FILE = "train_test_split.yaml"
SOURCE = (
    "CWFID, Haug & Ostermann, ECCV 2014 Workshops (doi 10.1007/978-3-319-16220-1_8); "
    "non-commercial research use only. Converted by `weedseg data convert cwfid`."
)


def convert_cwfid(src: str | Path, dst: str | Path, force: bool = False) -> ConversionResult:
    """`images/NNN_image.png` + `annotations/NNN_annotation.png` (red weed, green crop, black soil).

    Any other colour in an annotation is an error naming the file and its pixel count.
    """
    src = Path(src)
    pairs = pair_files(
        src / "images", src / "annotations", "{stem}_image.png", "{stem}_annotation.png"
    )
    color_map = default_color_map()
    samples = [
        Sample(stem, image, functools.partial(_annotation_mask, annotation, color_map))
        for stem, image, annotation in pairs
    ]
    splits = read_cwfid_splits(src / SPLIT_FILE, [stem for stem, _, _ in pairs])
    return write_dataset(dst, samples, splits, SOURCE, force=force)


def _annotation_mask(path: Path, color_map: dict[Color, int]) -> np.ndarray:
    return colors_to_index(read_image(path), color_map, path)


def read_cwfid_splits(path: Path, stems: list[str]) -> dict[str, list[str]]:
    """Official split; an image listed in both train and test is kept in test only (warned)."""
    if not path.is_file():
        raise WeedsegError(f"{path}: split file not found")
    meta = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    width = len(stems[0]) if stems else 3
    splits = {}
    for name in ("train", "test"):
        if name not in meta:
            raise WeedsegError(f"{path}: no {name!r} list")
        splits[name] = [f"{int(i):0{width}d}" for i in meta[name]]
    missing = sorted({s for members in splits.values() for s in members} - set(stems))
    if missing:
        raise WeedsegError(f"{path}: lists images that are not in images/: {', '.join(missing)}")
    for stem in sorted(set(splits["train"]) & set(splits["test"])):
        print(f"warning: {stem} is listed in both train and test of {path.name}; kept in test only")
        splits["train"].remove(stem)
    unassigned = sorted(set(stems) - set(splits["train"]) - set(splits["test"]))
    if unassigned:
        print(f"warning: {len(unassigned)} image(s) in no split: {', '.join(unassigned)}")
    return splits
