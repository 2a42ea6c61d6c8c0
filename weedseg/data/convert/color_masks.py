"""RGB label images + a colour map -> canonical dataset (e.g. the Peanut dataset)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from weedseg.classes import DEFAULT_CLASSES, ClassInfo
from weedseg.data.convert.masks import Color, colors_to_index, default_color_map
from weedseg.data.convert.pairing import DEFAULT_TEMPLATE, pair_files
from weedseg.data.convert.splits import parse_split_specs
from weedseg.data.convert.writer import ConversionResult, Sample, write_dataset
from weedseg.errors import WeedsegError
from weedseg.imageio import read_image

MASK_FOLDERS = ("labels", "masks", "annotations", "labels_rgb")


def convert_color_masks(
    src: str | Path,
    dst: str | Path,
    *,
    images: str = "images",
    masks: str | None = None,
    color_map: dict[Color, int] | None = None,
    split_specs: list[str] | None = None,
    image_template: str = DEFAULT_TEMPLATE,
    mask_template: str = DEFAULT_TEMPLATE,
    unknown_as_ignore: bool = False,
    source: str = "",
    force: bool = False,
    classes: tuple[ClassInfo, ...] = DEFAULT_CLASSES,
) -> ConversionResult:
    """Pair `SRC/images` with `SRC/<masks>` (default: the first of labels/, masks/, annotations/).

    Default colour map: each class's display colour (black soil, green crop, red weed).
    """
    src = Path(src)
    masks_dir = src / masks if masks else _find_mask_folder(src)
    pairs = pair_files(src / images, masks_dir, image_template, mask_template)
    color_map = color_map or default_color_map(classes)
    samples = [
        Sample(stem, image, functools.partial(_mask, label, color_map, unknown_as_ignore))
        for stem, image, label in pairs
    ]
    splits = parse_split_specs(split_specs or [], [stem for stem, _, _ in pairs])
    source = source or f"{src} (RGB label masks). Converted by `weedseg data convert color-masks`."
    return write_dataset(dst, samples, splits, source, force=force, classes=classes)


def _mask(path: Path, color_map: dict[Color, int], unknown_as_ignore: bool) -> np.ndarray:
    return colors_to_index(read_image(path), color_map, path, unknown_as_ignore)


def _find_mask_folder(src: Path) -> Path:
    for name in MASK_FOLDERS:
        if (src / name).is_dir():
            return src / name
    raise WeedsegError(f"{src}: no mask folder ({', '.join(MASK_FOLDERS)}); name it with --masks")
