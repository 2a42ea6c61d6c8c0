"""Images + single-channel index masks with a value map -> canonical dataset."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from weedseg.classes import DEFAULT_CLASSES, ClassInfo
from weedseg.data.convert.masks import remap_values
from weedseg.data.convert.pairing import DEFAULT_TEMPLATE, pair_files
from weedseg.data.convert.splits import parse_split_specs
from weedseg.data.convert.writer import ConversionResult, Sample, write_dataset
from weedseg.errors import WeedsegError
from weedseg.imageio import ImageReadError


def convert_index_masks(
    src: str | Path,
    dst: str | Path,
    *,
    value_map: dict[int, int],
    images: str = "images",
    masks: str = "masks",
    split_specs: list[str] | None = None,
    image_template: str = DEFAULT_TEMPLATE,
    mask_template: str = DEFAULT_TEMPLATE,
    source: str = "",
    force: bool = False,
    classes: tuple[ClassInfo, ...] = DEFAULT_CLASSES,
) -> ConversionResult:
    """Pair `SRC/<images>` with `SRC/<masks>` by name; every mask value must be in `value_map`."""
    src = Path(src)
    pairs = pair_files(src / images, src / masks, image_template, mask_template)
    samples = [
        Sample(stem, image, functools.partial(_mask, mask, value_map))
        for stem, image, mask in pairs
    ]
    splits = parse_split_specs(split_specs or [], [stem for stem, _, _ in pairs])
    source = source or f"{src} (index masks). Converted by `weedseg data convert index-masks`."
    return write_dataset(dst, samples, splits, source, force=force, classes=classes)


def _mask(path: Path, value_map: dict[int, int]) -> np.ndarray:
    return remap_values(read_index_values(path), value_map, path)


def read_index_values(path: Path) -> np.ndarray:
    """HxW uint8 values of an index mask: grey 8/16-bit, palette (indices, not colours) or RGB
    with equal channels; anything else, or values above 255, is an error naming the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            values = np.asarray(image)
    except (OSError, UnidentifiedImageError) as exc:
        raise ImageReadError(f"{path}: not a readable mask ({exc})") from exc
    if values.ndim == 3:
        if values.shape[2] < 3 or not (values[..., :1] == values[..., 1:3]).all():
            raise WeedsegError(f"{path}: index mask has {values.shape[2]} differing channels")
        values = values[..., 0]
    if values.dtype != np.uint8:
        if values.size and (values.min() < 0 or values.max() > 255):
            raise WeedsegError(f"{path}: index values must be 0..255, found up to {values.max()}")
        values = values.astype(np.uint8)
    return values
