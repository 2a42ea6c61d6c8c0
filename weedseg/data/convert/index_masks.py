"""Images + single-channel index masks with a value map -> canonical dataset."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from weedseg.data.convert.masks import remap_values
from weedseg.data.convert.pairing import DEFAULT_TEMPLATE, pair_files
from weedseg.data.convert.splits import parse_split_specs
from weedseg.data.convert.writer import ConversionResult, Sample, write_dataset
from weedseg.imageio import read_mask


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
    return write_dataset(dst, samples, splits, source, force=force)


def _mask(path: Path, value_map: dict[int, int]) -> np.ndarray:
    return remap_values(read_mask(path), value_map, path)
