"""Converters: tiny fixtures of each source layout, then both real datasets when present."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import shared_dataset

from weedseg.cli import main
from weedseg.data.convert import (
    convert_coco,
    convert_color_masks,
    convert_cwfid,
    convert_index_masks,
)
from weedseg.data.convert.masks import parse_color_map, parse_value_map
from weedseg.data.format import DatasetInfo
from weedseg.errors import WeedsegError
from weedseg.imageio import read_image, read_mask, write_image

GREEN, RED = (0, 255, 0), (255, 0, 0)


def _label_image(rng: np.random.Generator, height: int = 16, width: int = 24) -> np.ndarray:
    """RGB annotation with black soil and a few green/red rectangles."""
    label = np.zeros((height, width, 3), np.uint8)
    for color in (GREEN, RED, GREEN):
        y, x = rng.integers(0, height - 4), rng.integers(0, width - 4)
        label[y : y + 4, x : x + rng.integers(2, 5)] = color
    return label


def _photo(rng: np.random.Generator, height: int = 16, width: int = 24) -> np.ndarray:
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture
def fake_cwfid(tmp_path: Path) -> Path:
    """Three tiny images in the CWFID layout; image 2 is listed in both splits."""
    src = tmp_path / "cwfid"
    rng = np.random.default_rng(0)
    for i in (1, 2, 3):
        write_image(src / "images" / f"{i:03d}_image.png", _photo(rng))
        write_image(src / "annotations" / f"{i:03d}_annotation.png", _label_image(rng))
    (src / "train_test_split.yaml").write_text("train: [1, 2]\ntest: [2, 3]\n")
    return src


def test_cwfid_masks_match_annotation_colours(fake_cwfid: Path, tmp_path: Path, capsys) -> None:
    result = convert_cwfid(fake_cwfid, tmp_path / "out")
    assert "002 is listed in both train and test" in capsys.readouterr().out
    info = DatasetInfo.load(tmp_path / "out")
    assert info.splits == {"train": ["001"], "test": ["002", "003"]}
    assert result.count == 3
    for stem in ("001", "002", "003"):
        label = read_image(fake_cwfid / "annotations" / f"{stem}_annotation.png")
        mask = read_mask(info.mask_path(stem))
        assert set(np.unique(mask)) <= {0, 1, 2}
        assert (mask == 1).sum() == np.all(label == GREEN, axis=2).sum()
        assert (mask == 2).sum() == np.all(label == RED, axis=2).sum()
        assert read_image(info.image_path(stem)).shape == label.shape


def test_cwfid_other_colour_names_file_and_pixel_count(fake_cwfid: Path, tmp_path: Path) -> None:
    path = fake_cwfid / "annotations" / "003_annotation.png"
    label = read_image(path)
    label[0, :5] = (10, 200, 10)
    write_image(path, label)
    with pytest.raises(WeedsegError, match=r"003_annotation\.png: 5 pixels have colours outside"):
        convert_cwfid(fake_cwfid, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_existing_output_is_refused_without_force(fake_cwfid: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["data", "convert", "cwfid", str(fake_cwfid), str(out)]) == 2
    assert (out / "keep.txt").read_text() == "mine"
    assert main(["data", "convert", "cwfid", str(fake_cwfid), str(out), "--force"]) == 0
    assert not (out / "keep.txt").exists()
    assert len(list((out / "masks").glob("*.png"))) == 3


def test_index_masks_value_map_and_name_templates(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    src = tmp_path / "src"
    source_masks = {}
    for stem in ("a1", "a2", "b1"):
        write_image(src / "images" / f"{stem}.jpg", _photo(rng))
        source_masks[stem] = rng.integers(0, 3, (16, 24), dtype=np.uint8)
        write_image(src / "masks" / f"{stem}_mask.png", source_masks[stem])
    convert_index_masks(
        src,
        tmp_path / "out",
        value_map=parse_value_map("0=soil,1=weed,2=crop"),
        mask_template="{stem}_mask.png",
        split_specs=["train=a1,a2", "val=b1"],
    )
    info = DatasetInfo.load(tmp_path / "out")
    assert info.splits == {"train": ["a1", "a2"], "val": ["b1"]}
    mask = read_mask(info.mask_path("a2"))
    np.testing.assert_array_equal(mask, np.array([0, 2, 1], np.uint8)[source_masks["a2"]])


def test_index_masks_read_palette_and_16_bit_values(tmp_path: Path) -> None:
    from PIL import Image

    src = tmp_path / "src"
    rng = np.random.default_rng(6)
    values = rng.integers(0, 3, (16, 24), dtype=np.uint8)
    write_image(src / "images" / "p.png", _photo(rng))
    write_image(src / "images" / "w.png", _photo(rng))
    palette = Image.fromarray(values, mode="P")
    palette.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)  # VOC-style colours
    (src / "masks").mkdir()
    palette.save(src / "masks" / "p.png")
    write_image(src / "masks" / "w.png", values.astype(np.uint16))
    convert_index_masks(src, tmp_path / "out", value_map=parse_value_map("0=soil,1=crop,2=weed"))
    for stem in ("p", "w"):
        np.testing.assert_array_equal(read_mask(tmp_path / "out" / "masks" / f"{stem}.png"), values)


def test_index_masks_unmapped_value_is_an_error(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_image(src / "images" / "x.png", _photo(np.random.default_rng(2)))
    write_image(src / "masks" / "x.png", np.full((16, 24), 7, np.uint8))
    with pytest.raises(WeedsegError, match=r"x\.png: 384 pixels have values outside.*7 x384"):
        convert_index_masks(src, tmp_path / "out", value_map=parse_value_map("0=soil,1=crop"))


def test_index_masks_unpaired_image_is_named(tmp_path: Path) -> None:
    src = tmp_path / "src"
    rng = np.random.default_rng(3)
    write_image(src / "images" / "x.png", _photo(rng))
    write_image(src / "images" / "lonely.png", _photo(rng))
    write_image(src / "masks" / "x.png", np.zeros((16, 24), np.uint8))
    with pytest.raises(WeedsegError, match=r"lonely\.png: no mask"):
        convert_index_masks(src, tmp_path / "out", value_map={0: 0})


@pytest.fixture
def fake_peanut(tmp_path: Path) -> Path:
    src = tmp_path / "peanut"
    rng = np.random.default_rng(4)
    for i in range(1, 7):
        write_image(src / "images" / f"{i:04d}.jpg", _photo(rng))
        write_image(src / "labels" / f"{i:04d}.png", _label_image(rng))
    return src


def test_color_masks_range_and_file_splits(fake_peanut: Path, tmp_path: Path) -> None:
    listing = tmp_path / "test.txt"
    listing.write_text("0005.jpg\n0006\n")
    convert_color_masks(
        fake_peanut,
        tmp_path / "out",
        split_specs=["train=0001-0003", "val=0004-0004", f"test=@{listing}"],
    )
    info = DatasetInfo.load(tmp_path / "out")
    assert info.splits == {
        "train": ["0001", "0002", "0003"],
        "val": ["0004"],
        "test": ["0005", "0006"],
    }
    label = read_image(fake_peanut / "labels" / "0004.png")
    expected = np.zeros(label.shape[:2], np.uint8)
    expected[np.all(label == GREEN, axis=2)] = 1
    expected[np.all(label == RED, axis=2)] = 2
    np.testing.assert_array_equal(read_mask(info.mask_path("0004")), expected)
    assert info.images["0004"] == "0004.jpg"


def test_color_masks_custom_colours_and_unknown_as_ignore(
    fake_peanut: Path, tmp_path: Path
) -> None:
    colors = parse_color_map(["soil=0,0,0", "weed=0,255,0"])  # red is not in this map
    with pytest.raises(WeedsegError, match="colours outside the colour map"):
        convert_color_masks(fake_peanut, tmp_path / "a", color_map=colors)
    convert_color_masks(fake_peanut, tmp_path / "b", color_map=colors, unknown_as_ignore=True)
    label = read_image(fake_peanut / "labels" / "0001.png")
    mask = read_mask(tmp_path / "b" / "masks" / "0001.png")
    assert (mask == 255).sum() == np.all(label == RED, axis=2).sum()
    assert (mask == 2).sum() == np.all(label == GREEN, axis=2).sum()


def test_overlapping_splits_are_refused(fake_peanut: Path, tmp_path: Path) -> None:
    with pytest.raises(WeedsegError, match="more than one split"):
        convert_color_masks(
            fake_peanut, tmp_path / "out", split_specs=["a=0001-0004", "b=0004-0006"]
        )


def _uncompressed_rle(binary: np.ndarray) -> list[int]:
    """COCO run lengths in column-major order, starting with a run of zeros."""
    flat = binary.flatten(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    return runs if flat[0] == 0 else [0, *runs]


def _coco_fixture(tmp_path: Path, categories: list[str]) -> Path:
    """Two 20x30 images: a polygon crop and a compressed-RLE weed on the first, an
    uncompressed-RLE weed (CVAT's iscrowd export) on the second."""
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(5)
    folder = tmp_path / "coco"
    for name in ("f1.jpg", "f2.jpg"):
        write_image(folder / name, _photo(rng, 20, 30))
    weed = np.zeros((20, 30), np.uint8, order="F")
    weed[2:6, 20:27] = 1
    compressed = mask_utils.encode(np.asfortranarray(weed))
    data = {
        "images": [
            {"id": 1, "file_name": "f1.jpg", "height": 20, "width": 30},
            {"id": 2, "file_name": "f2.jpg", "height": 20, "width": 30},
        ],
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(categories)],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "segmentation": [[2, 10, 12, 10, 12, 18, 2, 18]],
                "area": 80.0,
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 2,
                "segmentation": {"size": [20, 30], "counts": compressed["counts"].decode()},
                "area": 28.0,
                "iscrowd": 1,
            },
            {
                "id": 3,
                "image_id": 2,
                "category_id": 2,
                "segmentation": {"size": [20, 30], "counts": _uncompressed_rle(weed)},
                "area": 28.0,
                "iscrowd": 1,
            },
        ],
    }
    (folder / "annotations.json").write_text(json.dumps(data))
    return folder


def test_coco_polygons_and_rle_with_category_map(tmp_path: Path) -> None:
    src = _coco_fixture(tmp_path, ["carrot", "chamomile"])
    convert_coco(src, tmp_path / "out", category_map={"carrot": "crop", "chamomile": "weed"})
    info = DatasetInfo.load(tmp_path / "out")
    mask = read_mask(info.mask_path("f1"))
    assert (mask == 2).sum() == 28
    assert mask[4, 22] == 2 and mask[14, 6] == 1 and mask[0, 0] == 0
    assert 70 <= (mask == 1).sum() <= 99  # polygon 10x8 rasterised
    np.testing.assert_array_equal(read_mask(info.mask_path("f2")) == 2, mask == 2)
    assert info.splits == {"train": ["f1", "f2"]}


def test_coco_unknown_categories_are_listed(tmp_path: Path) -> None:
    src = _coco_fixture(tmp_path, ["carrot", "chamomile"])
    code = main(["data", "convert", "coco", str(src), str(tmp_path / "o"), "--map", "carrot=crop"])
    assert code == 2
    with pytest.raises(WeedsegError, match="categories without a class: chamomile"):
        convert_coco(src, tmp_path / "out", category_map={"carrot": "crop"})


@pytest.mark.real_data
@pytest.mark.slow
def test_real_cwfid_converts_exactly(tmp_path: Path) -> None:
    src = shared_dataset("cwfid")
    convert_cwfid(src, tmp_path / "cwfid")
    info = DatasetInfo.load(tmp_path / "cwfid")
    assert len(list((tmp_path / "cwfid" / "images").iterdir())) == 60
    assert len(list((tmp_path / "cwfid" / "masks").iterdir())) == 60
    assert (len(info.split("train")), len(info.split("test"))) == (39, 21)
    assert "028" in info.split("test") and "028" not in info.split("train")
    for stem in info.images:
        label = cv2.imread(str(src / "annotations" / f"{stem}_annotation.png"))  # BGR
        mask = read_mask(info.mask_path(stem))
        assert set(np.unique(mask).tolist()) <= {0, 1, 2}
        assert (mask == 1).sum() == np.all(label == (0, 255, 0), axis=2).sum(), stem
        assert (mask == 2).sum() == np.all(label == (0, 0, 255), axis=2).sum(), stem


@pytest.mark.real_data
@pytest.mark.slow
def test_real_peanut_block_split_exact_to_the_pixel(tmp_path: Path) -> None:
    src = shared_dataset("peanut")
    splits = ["--split", "train=0001-0280", "--split", "val=0281-0320", "--split", "test=0321-0400"]
    assert main(["data", "convert", "color-masks", str(src), str(tmp_path / "p"), *splits]) == 0
    info = DatasetInfo.load(tmp_path / "p")
    assert len(info.images) == 400
    assert [len(info.split(s)) for s in ("train", "val", "test")] == [280, 40, 80]
    assert info.split("val")[0] == "0281" and info.split("test")[-1] == "0400"
    for stem in info.images:
        label = cv2.imread(str(src / "labels" / f"{stem}.png"))  # BGR
        expected = np.zeros(label.shape[:2], np.uint8)
        expected[np.all(label == (0, 255, 0), axis=2)] = 1
        expected[np.all(label == (0, 0, 255), axis=2)] = 2
        np.testing.assert_array_equal(read_mask(info.mask_path(stem)), expected, err_msg=stem)


def test_coco_roboflow_split_folders_become_splits(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    src = tmp_path / "roboflow"
    for folder, names in (("train", ["t1.jpg", "t2.jpg"]), ("valid", ["v1.jpg"])):
        for name in names:
            write_image(src / folder / name, _photo(rng, 20, 30))
        data = {
            "images": [
                {"id": i, "file_name": n, "height": 20, "width": 30} for i, n in enumerate(names)
            ],
            "categories": [
                {"id": 0, "name": "field-plants", "supercategory": "none"},  # never used
                {"id": 1, "name": "weed", "supercategory": "field-plants"},
            ],
            "annotations": [
                {"id": 1, "image_id": 0, "category_id": 1, "segmentation": [[1, 1, 9, 1, 9, 9]]}
            ],
        }
        (src / folder / "_annotations.coco.json").write_text(json.dumps(data))
    convert_coco(src, tmp_path / "out")
    info = DatasetInfo.load(tmp_path / "out")
    assert info.splits == {"train": ["t1", "t2"], "val": ["v1"]}
    assert (read_mask(info.mask_path("t1")) == 2).sum() > 20
