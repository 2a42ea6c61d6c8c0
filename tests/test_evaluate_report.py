"""Tiled evaluation of a model over a split and the report folder it writes."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from bundles import MEAN, STD
from labeled_datasets import colour_rule_model, write_colour_dataset

from weedseg.classes import IGNORE_INDEX
from weedseg.evaluate.evaluator import evaluate_split
from weedseg.evaluate.report import write_report
from weedseg.imageio import read_mask, write_image
from weedseg.tiling import TilingOptions

REPORT_FILES = ("report.json", "report.md", "confusion_matrix.png", "class_iou.png")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def dataset(tmp_path):
    # one image fits a tile (padded), one needs overlapping windows, one is corrupt
    info = write_colour_dataset(tmp_path / "data", {"test": [(50, 70), (100, 150), (40, 40)]})
    (info.image_path("test_02")).write_bytes(b"not an image")
    return info


def _evaluate_colour_rule(dataset, **options):
    """The exact colour rule scored on the test split, with `options` for evaluate_split."""
    options.setdefault("tiling", TilingOptions(64, 16))
    return evaluate_split(
        colour_rule_model(), dataset, dataset.split("test"), mean=MEAN, std=STD, **options
    )


def test_tiled_evaluation_counts_planted_mask_errors(dataset):
    # plant errors: 30 ground-truth pixels of soil relabelled as weed, 20 pixels ignored
    mask = read_mask(dataset.mask_path("test_01"))
    soil = np.argwhere(mask == 0)
    mask[tuple(soil[:30].T)] = 2
    mask[tuple(soil[30:50].T)] = IGNORE_INDEX
    write_image(dataset.mask_path("test_01"), mask)

    result = _evaluate_colour_rule(
        dataset, tiling=TilingOptions(64, 16, batch_size=3), keep_worst=1
    )
    assert [s.stem for s in result.per_image] == ["test_00", "test_01"]
    assert result.skipped[0]["stem"] == "test_02"
    # the colour rule is exact, so the only errors are the planted ones
    off_diagonal = result.matrix - np.diag(np.diag(result.matrix))
    assert off_diagonal.sum() == 30 and result.matrix[2, 0] == 30
    assert result.matrix.sum() == 50 * 70 + 100 * 150 - 20
    assert result.worst[0].stem == "test_01"


def test_report_writes_every_file_and_the_pngs_open(dataset, tmp_path):
    result = _evaluate_colour_rule(dataset, keep_worst=2)
    out = tmp_path / "report"
    report = write_report(
        out,
        matrix=result.matrix,
        classes=dataset.classes,
        per_image=result.per_image,
        worst=result.worst,
        skipped=result.skipped,
        header={
            "model": "colour rule",
            "data": str(dataset.root),
            "split": "test",
            "settings": {"tile": 64, "overlap": 16, "scale": 1.0},
        },
    )
    for name in REPORT_FILES:
        assert (out / name).is_file(), name
    assert json.loads((out / "report.json").read_text()) == report
    assert report["metrics"]["mIoU"] == 1.0
    assert len(report["worst"]) == 2
    for png in ["confusion_matrix.png", "class_iou.png"] + [w["overlay"] for w in report["worst"]]:
        picture = cv2.imread(str(out / png))
        assert picture is not None and picture.size > 0, png
    md = (out / "report.md").read_text()
    assert "| crop |" in md and "test_02" in md  # per-class table and the skipped image


def test_evaluate_command_on_a_tiny_checkpoint(dataset, tmp_path, capsys):
    from weedseg.checkpoint import save_checkpoint
    from weedseg.cli import main
    from weedseg.models import build_model, spec_from_name

    spec = spec_from_name("unet-tiny")
    meta = {"classes": [c.to_dict() for c in dataset.classes], "mean": MEAN, "std": STD}
    save_checkpoint(
        tmp_path / "seg" / "checkpoints" / "best",
        build_model(spec, 3),
        spec=spec,
        task="segmentation",
        meta=meta,
    )
    out = tmp_path / "report"
    args = ["evaluate", "--model", str(tmp_path / "seg"), "--data", str(dataset.root)]
    args += ["--out", str(out), "--tile", "64", "--overlap", "16", "--worst", "2"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "mIoU" in printed and "Report:" in printed
    for name in REPORT_FILES:
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    assert report["images"] == 2 and report["skipped"][0]["stem"] == "test_02"
    assert np.array(report["confusion_matrix"]).sum() == 50 * 70 + 100 * 150
    for png in ["confusion_matrix.png", "class_iou.png"] + [w["overlay"] for w in report["worst"]]:
        assert cv2.imread(str(out / png)) is not None, png
    assert main(args) == 2  # an existing report is not overwritten without --force
    assert main([*args, "--force"]) == 0


def test_scaled_evaluation_scores_downscaled_images(dataset):
    result = _evaluate_colour_rule(dataset, scale=0.5)
    assert result.matrix.sum() == 25 * 35 + 50 * 75  # masks resized with the images (nearest)
    assert np.trace(result.matrix) / result.matrix.sum() > 0.97  # only disc borders may blur


def test_input_scale_scores_against_full_resolution_masks(dataset):
    result = _evaluate_colour_rule(dataset, tiling=TilingOptions(64, 16, input_scale=0.5))
    assert result.matrix.sum() == 50 * 70 + 100 * 150  # the masks as they are
    assert np.trace(result.matrix) / result.matrix.sum() > 0.95  # only disc borders may blur


def test_flip_tta_evaluation_keeps_an_exact_model_exact(dataset):
    plain = _evaluate_colour_rule(dataset)
    flipped = _evaluate_colour_rule(dataset, tta="flip")
    np.testing.assert_array_equal(flipped.matrix, plain.matrix)  # the 1x1 rule is mirror-exact

    from weedseg.cli import main

    with pytest.raises(SystemExit):  # argparse refuses an unknown mode
        main(["evaluate", "--model", "m", "--data", "d", "--out", "o", "--tta", "rotate"])
