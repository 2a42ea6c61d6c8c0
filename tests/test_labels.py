"""Label import: COCO, CVAT and Roboflow mask exports onto the base classes; unknown names fail."""

from __future__ import annotations

import json

import numpy as np
import pytest

from weedseg.classes import DEFAULT_CLASSES, IGNORE_INDEX, ClassInfo
from weedseg.data.format import DatasetInfo
from weedseg.errors import WeedsegError
from weedseg.imageio import read_mask, write_image
from weedseg.labels import detect_format, import_labels, parse_rename


def write_coco(folder, categories: list[str]) -> None:
    """Two 32x32 images, a square of each category on the first one."""
    folder.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(2):
        write_image(folder / f"img{i}.png", np.full((32, 32, 3), 90, np.uint8))
        images.append({"id": i, "file_name": f"img{i}.png", "height": 32, "width": 32})
    for k, _ in enumerate(categories):
        x = 4 + 10 * k
        square = [x, 4, x + 6, 4, x + 6, 10, x, 10]
        annotations.append(
            {"id": k, "image_id": 0, "category_id": k + 1, "segmentation": [square], "area": 36}
        )
    categories = [{"id": k + 1, "name": n} for k, n in enumerate(categories)]
    coco = {"images": images, "annotations": annotations, "categories": categories}
    (folder / "labels.json").write_text(json.dumps(coco))


def test_coco_names_match_classes_case_insensitively_and_by_rename(tmp_path):
    write_coco(tmp_path / "coco", ["Crop", "dandelion", "Background"])
    result = import_labels(
        tmp_path / "coco", tmp_path / "out", classes=DEFAULT_CLASSES,
        rename=parse_rename(["dandelion=weed"]),
    )  # fmt: skip
    assert result.count == 2
    mask = read_mask(tmp_path / "out" / "masks" / "img0.png")
    assert mask[6, 6] == 1 and mask[6, 16] == 2 and mask[6, 26] == 0 and mask[20, 20] == 0
    assert DatasetInfo.load(tmp_path / "out").class_names == ["soil", "crop", "weed"]


def test_unknown_class_names_are_listed_and_nothing_is_written(tmp_path):
    write_coco(tmp_path / "coco", ["crop", "dandelion", "thistle"])
    with pytest.raises(WeedsegError, match="unknown class name.*'dandelion', 'thistle'.*--map"):
        import_labels(tmp_path / "coco", tmp_path / "out", classes=DEFAULT_CLASSES)
    assert not (tmp_path / "out").exists()
    with pytest.raises(WeedsegError, match="not classes: tree"):
        import_labels(
            tmp_path / "coco", tmp_path / "out", classes=DEFAULT_CLASSES, rename={"x": "tree"}
        )


def test_other_class_lists_keep_their_order(tmp_path):
    classes = (ClassInfo("ground", (0, 0, 0)), ClassInfo("weed", (255, 0, 0)))
    write_coco(tmp_path / "coco", ["weed"])
    import_labels(tmp_path / "coco", tmp_path / "out", classes=classes)
    assert read_mask(tmp_path / "out" / "masks" / "img0.png")[6, 6] == 1
    assert DatasetInfo.load(tmp_path / "out").class_names == ["ground", "weed"]


def test_cvat_mask_export_uses_its_labelmap(tmp_path):
    src = tmp_path / "cvat"
    image = np.zeros((16, 16, 3), np.uint8)
    labels = np.zeros((16, 16, 3), np.uint8)
    labels[:8] = (250, 50, 83)  # CVAT's own colour for "Weed"
    labels[8:, :4] = (1, 2, 3)  # "stone", mapped to ignore
    write_image(src / "JPEGImages" / "a.png", image)
    write_image(src / "SegmentationClass" / "a.png", labels)
    (src / "labelmap.txt").write_text(
        "# label:color_rgb:parts:actions\nbackground:0,0,0::\nWeed:250,50,83::\nstone:1,2,3::\n"
    )
    assert detect_format(src) == "cvat-masks"
    import_labels(src, tmp_path / "out", classes=DEFAULT_CLASSES, rename={"stone": "ignore"})
    mask = read_mask(tmp_path / "out" / "masks" / "a.png")
    assert mask[0, 0] == 2 and mask[12, 0] == IGNORE_INDEX and mask[12, 12] == 0


def test_roboflow_and_plain_index_masks(tmp_path):
    src = tmp_path / "roboflow"
    mask = np.zeros((16, 16), np.uint8)
    mask[:4] = 1
    mask[4:8] = 2
    write_image(src / "a.jpg", np.zeros((16, 16, 3), np.uint8))
    write_image(src / "a_mask.png", mask)
    (src / "_classes.csv").write_text("Pixel Value, Class\n0, background\n1, weed\n2, crop\n")
    assert detect_format(src) == "roboflow-masks"
    import_labels(src, tmp_path / "out", classes=DEFAULT_CLASSES)
    converted = read_mask(tmp_path / "out" / "masks" / "a.png")
    assert converted[0, 0] == 2 and converted[5, 0] == 1 and converted[10, 0] == 0

    plain = tmp_path / "plain"
    write_image(plain / "images" / "b.png", np.zeros((16, 16, 3), np.uint8))
    write_image(plain / "masks" / "b.png", mask)
    assert detect_format(plain) == "index-masks"
    import_labels(plain, tmp_path / "out2", classes=DEFAULT_CLASSES)
    assert read_mask(tmp_path / "out2" / "masks" / "b.png")[5, 0] == 2  # values are class ids
    with pytest.raises(WeedsegError, match="unrecognised labels layout"):
        detect_format(tmp_path / "out2" / "masks")


def test_import_labels_command_takes_the_classes_of_a_bundle(tmp_path, capsys):
    from bundles import build_colour_bundle

    from weedseg.cli import main

    write_coco(tmp_path / "coco", ["Weed", "Carrot"])
    bundle = build_colour_bundle(tmp_path / "bundle")
    args = ["import-labels", str(tmp_path / "coco"), "--out", str(tmp_path / "out")]
    assert main([*args, "--base", str(bundle)]) == 2
    assert "'Carrot'" in capsys.readouterr().err and not (tmp_path / "out").exists()
    assert main([*args, "--base", str(bundle), "--map", "Carrot=crop"]) == 0
    assert "wrote 2 image/mask pairs" in capsys.readouterr().out
    assert read_mask(tmp_path / "out" / "masks" / "img0.png")[6, 16] == 1


def test_coco_file_names_outside_the_images_folder_are_refused(tmp_path):
    write_coco(tmp_path / "coco", ["crop"])
    secret = tmp_path / "secret.png"
    write_image(secret, np.zeros((32, 32, 3), np.uint8))
    coco = json.loads((tmp_path / "coco" / "labels.json").read_text())
    coco["images"][0]["file_name"] = "../secret.png"
    coco["images"][1]["file_name"] = str(secret)
    (tmp_path / "coco" / "labels.json").write_text(json.dumps(coco))
    with pytest.raises(WeedsegError, match=r"contains '\.\.'(.|\n)*is absolute"):
        import_labels(tmp_path / "coco", tmp_path / "out", classes=DEFAULT_CLASSES)
    assert not (tmp_path / "out").exists()


def test_coco_sizes_are_checked_against_the_image_before_a_mask_is_made(tmp_path):
    write_coco(tmp_path / "coco", ["crop"])
    coco = json.loads((tmp_path / "coco" / "labels.json").read_text())
    coco["images"][0] |= {"height": 200_000, "width": 200_000}  # 40 GB if allocated
    rle = {"size": [100_000, 100_000], "counts": [0, 10**10]}
    coco["annotations"].append({"id": 9, "image_id": 1, "category_id": 1, "segmentation": rle})
    (tmp_path / "coco" / "labels.json").write_text(json.dumps(coco))
    with pytest.raises(WeedsegError) as caught:
        import_labels(tmp_path / "coco", tmp_path / "out", classes=DEFAULT_CLASSES)
    assert "declares 200000x200000 but the file is 32x32" in str(caught.value)
    assert "RLE size [100000, 100000] is not its image's 32x32" in str(caught.value)


def test_force_refuses_an_out_that_is_or_holds_the_source(tmp_path):
    write_coco(tmp_path / "labels" / "coco", ["crop"])
    for out in (tmp_path / "labels" / "coco", tmp_path / "labels"):
        with pytest.raises(WeedsegError, match="is or contains the labels source"):
            import_labels(tmp_path / "labels" / "coco", out, classes=DEFAULT_CLASSES, force=True)
    assert (tmp_path / "labels" / "coco" / "labels.json").is_file()
