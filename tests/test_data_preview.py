"""`weedseg data show`: a picture with overlays in the class colours and a legend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from weedseg.classes import DEFAULT_CLASSES
from weedseg.cli import main
from weedseg.data.format import DatasetInfo
from weedseg.data.preview import overlay_mask, pick_stems, render_preview
from weedseg.data.synth import SynthConfig, generate_dataset
from weedseg.errors import WeedsegError
from weedseg.imageio import read_image, write_image


@pytest.fixture
def dataset(tmp_path: Path) -> DatasetInfo:
    return generate_dataset(tmp_path / "data", SynthConfig(n=6, size=64, seed=2))


def test_show_writes_a_grid_with_overlays(dataset: DatasetInfo, tmp_path: Path) -> None:
    out = tmp_path / "preview.png"
    args = ["data", "show", str(dataset.root), "--out", str(out), "--n", "4", "--tile", "64"]
    assert main(args) == 0
    picture = read_image(out)
    assert picture.shape[1] == 2 * (2 * 64 + 4) + 3 * 8  # two (image | overlay) pairs per row
    pure_green = np.all(picture == (0, 255, 0), axis=2).sum()  # crop outlines and swatch
    pure_red = np.all(picture == (255, 0, 0), axis=2).sum()
    assert pure_green > 20 and pure_red > 20


def test_overlay_keeps_soil_and_tints_plants() -> None:
    image = np.full((4, 4, 3), 100, np.uint8)
    mask = np.array([[0, 0, 1, 1]] * 2 + [[2, 2, 255, 255]] * 2, np.uint8)
    out = overlay_mask(image, mask, DEFAULT_CLASSES)
    assert (out[0, 0] == 100).all()  # soil (black) is not darkened
    assert out[0, 3, 1] > 100 and out[3, 0, 0] > 100


def test_split_selection_and_bad_split(dataset: DatasetInfo) -> None:
    assert set(pick_stems(dataset, "val", 8)) <= set(dataset.split("val"))
    with pytest.raises(KeyError, match="no split 'nope'"):
        pick_stems(dataset, "nope", 2)


def test_mask_of_another_size_is_named(dataset: DatasetInfo, tmp_path: Path) -> None:
    stem = sorted(dataset.images)[0]
    write_image(dataset.mask_path(stem), np.zeros((8, 8), np.uint8))
    with pytest.raises(WeedsegError, match=f"{stem}.png: size differs"):
        render_preview(dataset, n=6)
