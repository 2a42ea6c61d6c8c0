"""Detect a labels export's format and convert it onto the base model's classes."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from weedseg.classes import ClassInfo
from weedseg.data.convert import convert_coco, convert_color_masks, convert_index_masks
from weedseg.data.convert.color_masks import MASK_FOLDERS
from weedseg.data.convert.masks import Color, parse_color_map
from weedseg.data.convert.writer import ConversionResult
from weedseg.data.format import IMAGE_SUFFIXES
from weedseg.errors import WeedsegError
from weedseg.imageio import read_image
from weedseg.labels.classmap import ClassResolver, read_cvat_labelmap, read_roboflow_classes

FORMATS = ("auto", "coco", "cvat-masks", "roboflow-masks", "color-masks", "index-masks")
CVAT_LABELMAP = "labelmap.txt"
ROBOFLOW_CLASSES = "_classes.csv"


def detect_format(src: Path) -> str:
    """The export layout of `src`, from the files exporters always write."""
    if src.is_file():
        if src.suffix.lower() == ".json":
            return "coco"
        raise WeedsegError(f"{src}: expected a COCO .json file or a labels folder")
    if not src.is_dir():
        raise WeedsegError(f"{src}: no such labels file or folder")
    if (src / CVAT_LABELMAP).is_file():
        return "cvat-masks"
    if (src / ROBOFLOW_CLASSES).is_file():
        return "roboflow-masks"
    if list(src.glob("*.json")) or list((src / "annotations").glob("*.json")):
        return "coco"
    masks = next((src / name for name in MASK_FOLDERS if (src / name).is_dir()), None)
    if (src / "images").is_dir() and masks is not None:
        return "color-masks" if _looks_coloured(masks) else "index-masks"
    raise WeedsegError(
        f"{src}: unrecognised labels layout; expected a COCO .json, a CVAT mask export "
        f"({CVAT_LABELMAP}), a Roboflow mask export ({ROBOFLOW_CLASSES}) or images/ + masks/"
    )


def import_labels(
    src: str | Path,
    dst: str | Path,
    *,
    classes: tuple[ClassInfo, ...],
    rename: dict[str, str] | None = None,
    fmt: str = "auto",
    colors: list[str] | None = None,
    values: str | None = None,
    split_specs: list[str] | None = None,
    force: bool = False,
) -> ConversionResult:
    """Write the labels at `src` as a canonical dataset at `dst` with exactly `classes`.

    Every label name must resolve to one of `classes` (see `ClassResolver`), else one
    WeedsegError lists the unknown names; nothing is written then.
    """
    src = Path(src)
    if force:
        check_not_over_source(src, Path(dst))
    if fmt not in FORMATS:
        raise WeedsegError(f"labels format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    fmt = detect_format(src) if fmt == "auto" else fmt
    resolver = ClassResolver(classes, rename or {})
    common = {"split_specs": split_specs, "force": force, "classes": classes}
    if fmt == "coco":
        json_path, images = _coco_files(src)
        names = _coco_category_names(json_path)
        category_map = resolver.check(names, str(json_path))
        return convert_coco(json_path, dst, images=images, category_map=category_map, **common)
    if fmt == "cvat-masks":
        color_map = _named_colors(read_cvat_labelmap(src / CVAT_LABELMAP), resolver, src)
        return convert_color_masks(
            src, dst, images=_first_dir(src, ("JPEGImages", "images")),
            masks=_first_dir(src, ("SegmentationClass", *MASK_FOLDERS)), color_map=color_map,
            **common,
        )  # fmt: skip
    if fmt == "roboflow-masks":
        names = read_roboflow_classes(src / ROBOFLOW_CLASSES)
        checked = resolver.check(names.values(), str(src / ROBOFLOW_CLASSES))
        value_map = {v: resolver.index(checked[n]) for v, n in names.items()}
        suffix = _image_suffix(src)
        return convert_index_masks(
            src, dst, value_map=value_map, images=".", masks=".",
            image_template=f"{{stem}}{suffix}", mask_template="{stem}_mask.png", **common,
        )  # fmt: skip
    if fmt == "color-masks":
        color_map = parse_color_map(colors, classes) if colors else None
        return convert_color_masks(src, dst, color_map=color_map, **common)
    value_map = _value_map(values, resolver) if values else dict(enumerate(range(len(classes))))
    return convert_index_masks(src, dst, value_map=value_map, masks=_mask_dir(src), **common)


def check_not_over_source(src: Path, dst: Path) -> None:
    """Refuse an --out that is the labels export or holds it: --force would delete the source."""
    source, out = src.resolve(), dst.resolve()
    if out == source or out in source.parents:
        raise WeedsegError(
            f"--out {dst} is or contains the labels source {src}: --force would delete it; "
            "choose another --out"
        )


def _coco_files(src: Path) -> tuple[Path, str | None]:
    """The COCO json and its images folder (relative to the json's folder; None = beside it)."""
    if src.is_file():
        return src, None
    found = sorted(src.glob("*.json")) or sorted((src / "annotations").glob("*.json"))
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise WeedsegError(f"{src}: expected exactly one COCO .json file, found {names}")
    json_path = found[0]
    if json_path.parent.name == "annotations" and (src / "images").is_dir():
        return json_path, "../images"  # CVAT "COCO 1.0" layout
    return json_path, None


def _coco_category_names(json_path: Path) -> list[str]:
    try:
        coco = json.loads(json_path.read_text(encoding="utf-8"))
        return [str(c["name"]) for c in coco.get("categories", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WeedsegError(f"{json_path}: not a readable COCO file ({exc})") from exc


def _named_colors(colors: dict[str, Color], resolver: ClassResolver, src: Path) -> dict[Color, int]:
    checked = resolver.check(colors, str(src / CVAT_LABELMAP))
    return {color: resolver.index(checked[name]) for name, color in colors.items()}


def _value_map(text: str, resolver: ClassResolver) -> dict[int, int]:
    """`"0=soil,1=Weed"` -> {value: class index}, names resolved like every other label."""
    pairs = [item.split("=", 1) for item in filter(None, (s.strip() for s in text.split(",")))]
    if any(len(p) != 2 or not p[0].strip().isdigit() for p in pairs):
        raise WeedsegError(f"bad value map {text!r}: expected VALUE=CLASS like 1=weed")
    checked = resolver.check([name.strip() for _, name in pairs], "--values")
    return {int(v): resolver.index(checked[name.strip()]) for v, name in pairs}


def _first_dir(src: Path, names: tuple[str, ...]) -> str:
    for name in names:
        if (src / name).is_dir():
            return name
    raise WeedsegError(f"{src}: none of the folders {', '.join(names)} exists")


def _mask_dir(src: Path) -> str:
    return _first_dir(src, MASK_FOLDERS)


def _image_suffix(src: Path) -> str:
    """The image suffix of a flat Roboflow export (the files that are not `*_mask.png`)."""
    suffixes = {
        p.suffix
        for p in src.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.stem.endswith("_mask")
    }
    if len(suffixes) != 1:
        raise WeedsegError(f"{src}: expected images of one type beside the *_mask.png files")
    return suffixes.pop()


def _looks_coloured(masks: Path) -> bool:
    """Whether the first mask is an RGB label image (colours) rather than class values."""
    first = next((p for p in sorted(masks.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES), None)
    if first is None:
        raise WeedsegError(f"{masks}: no mask images")
    with Image.open(first) as image:
        if image.mode in ("L", "P", "I", "I;16"):
            return False
    rgb = read_image(first)
    return bool((rgb[..., 0] != rgb[..., 1]).any() or (rgb[..., 1] != rgb[..., 2]).any())
