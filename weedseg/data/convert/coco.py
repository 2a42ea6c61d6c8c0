"""COCO polygon/RLE annotations (CVAT, Roboflow, LabelMe exports) -> canonical dataset."""

from __future__ import annotations

import functools
import json
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from weedseg.classes import DEFAULT_CLASSES, ClassInfo
from weedseg.data.convert.masks import class_index
from weedseg.data.convert.splits import parse_split_specs
from weedseg.data.convert.writer import (
    ConversionResult,
    Sample,
    image_size,
    raise_if_problems,
    write_dataset,
)
from weedseg.errors import WeedsegError

SPLIT_FOLDER_NAMES = {"valid": "val", "validation": "val"}  # Roboflow calls it "valid"


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

    `src` is a COCO json file, a folder holding exactly one, or a folder of split folders each
    holding one (Roboflow: train/, valid/, test/; the folders become the splits unless
    `split_specs` are given). Category names map to class names through `category_map`
    (default: a category must be named like a class); `ignore` gives 255. Larger objects are
    painted first, so small plants on top of big ones stay visible.
    """
    samples: list[Sample] = []
    folder_splits: dict[str, list[str]] = {}
    problems: list[str] = []
    for json_path, split in _find_jsons(Path(src)):
        found, missing = _read_coco(json_path, images, category_map or {}, classes)
        samples += found
        problems += missing
        if split:
            folder_splits[split] = [s.stem for s in found]
    raise_if_problems(problems, f"cannot convert {src}")
    stems = [s.stem for s in samples]
    repeated = sorted({s for s in stems if stems.count(s) > 1})
    if repeated:
        raise WeedsegError(f"{src}: several images share a file name stem: {', '.join(repeated)}")
    if split_specs or not folder_splits:
        splits = parse_split_specs(split_specs or [], stems)
    else:
        splits = folder_splits
    source = source or f"{src} (COCO). Converted by `weedseg data convert coco`."
    return write_dataset(dst, samples, splits, source, force=force, classes=classes)


def _read_coco(
    json_path: Path,
    images: str | None,
    category_map: dict[str, str],
    classes: tuple[ClassInfo, ...],
) -> tuple[list[Sample], list[str]]:
    """The samples of one COCO file, and the images it lists that are not on disk."""
    try:
        coco = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeedsegError(f"{json_path}: not a readable COCO json ({exc})") from exc
    images_dir = json_path.parent / images if images else json_path.parent
    used = {int(a["category_id"]) for a in coco.get("annotations", [])}
    categories = {
        int(c["id"]): str(c["name"]) for c in coco.get("categories", []) if int(c["id"]) in used
    }
    index_of = _category_indices(categories, category_map, json_path, classes)
    by_image: dict[int, list[dict]] = {}
    for ann in coco.get("annotations", []):
        by_image.setdefault(int(ann["image_id"]), []).append(ann)
    samples, missing = [], []
    for info in coco.get("images", []):
        unsafe = _unsafe_file_name(str(info["file_name"]))
        if unsafe:
            missing.append(f"{json_path}: image {info.get('id')}: file_name {unsafe}")
            continue
        image_path = _resolve_image(images_dir, str(info["file_name"]))
        if image_path is None:
            missing.append(f"{images_dir / info['file_name']}: listed in {json_path} but not found")
            continue
        anns = by_image.get(int(info["id"]), [])
        build = functools.partial(_rasterise, info, anns, index_of, json_path, image_path)
        samples.append(Sample(Path(info["file_name"]).stem, image_path, build))
    return samples, missing


def parse_category_map(text: str) -> dict[str, str]:
    """`"carrot=crop,chamomile=weed"` -> {category name: class name}."""
    mapping = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        category, sep, name = item.partition("=")
        if not sep:
            raise WeedsegError(f"bad category map entry {item!r}: expected CATEGORY=CLASS")
        mapping[category.strip()] = name.strip()
    return mapping


def _find_jsons(src: Path) -> list[tuple[Path, str | None]]:
    """(json file, split named by its folder or None) for a file, a folder or split folders."""
    if src.is_file():
        return [(src, None)]
    if not src.is_dir():
        raise WeedsegError(f"{src}: no such file or folder")
    found = sorted(src.glob("*.json"))
    if len(found) == 1:
        return [(found[0], None)]
    if found:
        names = ", ".join(p.name for p in found)
        raise WeedsegError(f"{src}: several .json files ({names}); name one as SRC")
    per_folder = [(d, sorted(d.glob("*.json"))) for d in sorted(src.iterdir()) if d.is_dir()]
    per_folder = [(d, files) for d, files in per_folder if files]
    if not per_folder or any(len(files) != 1 for _, files in per_folder):
        raise WeedsegError(
            f"{src}: expected one COCO .json, or split folders (train/, valid/, ...) with one each"
        )
    return [(files[0], SPLIT_FOLDER_NAMES.get(d.name, d.name)) for d, files in per_folder]


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


def _unsafe_file_name(file_name: str) -> str | None:
    """Why a COCO `file_name` may not be read (it must stay inside the images folder)."""
    path = PurePosixPath(file_name.replace("\\", "/"))
    if path.is_absolute() or PureWindowsPath(file_name).drive:
        return f"{file_name!r} is absolute (must be relative to the images folder)"
    if ".." in path.parts:
        return f"{file_name!r} contains '..' (must stay inside the images folder)"
    return None


def _resolve_image(images_dir: Path, file_name: str) -> Path | None:
    for candidate in (images_dir / file_name, images_dir / "images" / file_name):
        if candidate.is_file():
            return candidate
    return None


def _rasterise(
    info: dict, anns: list[dict], index_of: dict[int, int], json_path: Path, image_path: Path
) -> np.ndarray:
    from pycocotools import mask as mask_utils

    height, width = int(info["height"]), int(info["width"])
    actual = image_size(image_path)  # from the header: checked before any mask is allocated
    if (height, width) != actual:
        raise WeedsegError(
            f"{json_path}: image {info.get('id')} ({info['file_name']}) declares {width}x{height} "
            f"but the file is {actual[1]}x{actual[0]}"
        )
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
        elif [int(v) for v in segmentation.get("size", ())] != [height, width]:
            raise WeedsegError(
                f"{json_path}: annotation {ann.get('id')}: RLE size {segmentation.get('size')} "
                f"is not its image's {height}x{width} (height, width)"
            )
        elif isinstance(segmentation["counts"], list):
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            rle = segmentation
        region = mask_utils.decode(rle).astype(bool)  # region: [H, W]
        mask[region] = index_of[int(ann["category_id"])]
    return mask
