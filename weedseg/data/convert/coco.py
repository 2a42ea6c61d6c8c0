"""COCO polygon/RLE annotations (CVAT, Roboflow, LabelMe exports) -> canonical dataset."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from weedseg.classes import DEFAULT_CLASSES, ClassInfo
from weedseg.data.convert.masks import class_index
from weedseg.data.convert.splits import parse_split_specs
from weedseg.data.convert.writer import ConversionResult, Sample, raise_if_problems, write_dataset
from weedseg.errors import WeedsegError


def convert_coco(
    src: str | Path,
    dst: str | Path,
    *,
    images: str | None = None,
    category_map: dict[str, str] | None = None,
    split_specs: list[str] | None = None,
    source: str = "",
    force: bool = False,
    classes: tuple[ClassInfo, ...] = DEFAULT_CLASSES,
) -> ConversionResult:
    """Rasterise every annotation into its image's index mask; unannotated pixels are soil (0).

    `src` is the COCO json file or a folder holding exactly one. Category names map to class names
    through `category_map` (default: a category must be named like a class); `ignore` gives 255.
    Larger objects are painted first, so small plants on top of big ones stay visible.
    """
    json_path = _find_json(Path(src))
    coco = json.loads(json_path.read_text(encoding="utf-8"))
    images_dir = json_path.parent / images if images else json_path.parent
    categories = {int(c["id"]): str(c["name"]) for c in coco.get("categories", [])}
    index_of = _category_indices(categories, category_map or {}, json_path, classes)
    by_image: dict[int, list[dict]] = {}
    for ann in coco.get("annotations", []):
        by_image.setdefault(int(ann["image_id"]), []).append(ann)
    samples, problems = [], []
    for info in coco.get("images", []):
        image_path = _resolve_image(images_dir, str(info["file_name"]))
        if image_path is None:
            problems.append(
                f"{images_dir / info['file_name']}: image listed in {json_path.name} not found"
            )
            continue
        anns = by_image.get(int(info["id"]), [])
        build = functools.partial(_rasterise, info, anns, index_of, json_path)
        samples.append(Sample(Path(info["file_name"]).stem, image_path, build))
    raise_if_problems(problems, f"cannot convert {json_path}")
    stems = [s.stem for s in samples]
    if len(set(stems)) != len(stems):
        raise WeedsegError(f"{json_path}: several images share a file name stem")
    splits = parse_split_specs(split_specs or [], stems)
    source = source or f"{json_path} (COCO). Converted by `weedseg data convert coco`."
    return write_dataset(dst, samples, splits, source, force=force, classes=classes)


def parse_category_map(text: str) -> dict[str, str]:
    """`"carrot=crop,chamomile=weed"` -> {category name: class name}."""
    mapping = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        category, sep, name = item.partition("=")
        if not sep:
            raise WeedsegError(f"bad category map entry {item!r}: expected CATEGORY=CLASS")
        mapping[category.strip()] = name.strip()
    return mapping


def _find_json(src: Path) -> Path:
    if src.is_file():
        return src
    if not src.is_dir():
        raise WeedsegError(f"{src}: no such file or folder")
    found = sorted(src.glob("*.json"))
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise WeedsegError(f"{src}: expected exactly one COCO .json file, found {names}")
    return found[0]


def _category_indices(
    categories: dict[int, str],
    category_map: dict[str, str],
    json_path: Path,
    classes: tuple[ClassInfo, ...],
) -> dict[int, int]:
    class_names = {c.name for c in classes}
    unknown = sorted(
        {n for n in categories.values() if n not in category_map and n not in class_names}
    )
    if unknown:
        raise WeedsegError(
            f"{json_path}: categories without a class: {', '.join(unknown)} "
            f"(map them with --map NAME=CLASS, classes: {', '.join(sorted(class_names))}, ignore)"
        )
    return {
        cid: class_index(category_map.get(name, name), classes) for cid, name in categories.items()
    }


def _resolve_image(images_dir: Path, file_name: str) -> Path | None:
    for candidate in (images_dir / file_name, images_dir / "images" / file_name):
        if candidate.is_file():
            return candidate
    return None


def _rasterise(
    info: dict, anns: list[dict], index_of: dict[int, int], json_path: Path
) -> np.ndarray:
    from pycocotools import mask as mask_utils

    height, width = int(info["height"]), int(info["width"])
    mask = np.zeros((height, width), dtype=np.uint8)
    for ann in sorted(anns, key=lambda a: -float(a.get("area", 0.0))):
        if int(ann["category_id"]) not in index_of:
            raise WeedsegError(
                f"{json_path}: annotation {ann.get('id')} has unknown category {ann['category_id']}"
            )
        segmentation = ann.get("segmentation")
        if not segmentation:
            continue
        if isinstance(segmentation, list):
            rles = mask_utils.frPyObjects(segmentation, height, width)
            rle = mask_utils.merge(rles)
        elif isinstance(segmentation["counts"], list):
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            rle = segmentation
        region = mask_utils.decode(rle).astype(bool)  # region: [H, W]
        mask[region] = index_of[int(ann["category_id"])]
    return mask
