"""`weedseg demo`: runs every stage on a tiny synthetic dataset and says where outputs are."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from weedseg.service.settings import Settings

from weedseg.cli import main
from weedseg.commands.demo import STAGES
from weedseg.imageio import read_image
from weedseg.infer import Predictor
from weedseg.infer.analysis import weed_instances

TINY = ["--n", "72", "--size", "64", "--crop", "64", "--batch", "2", "--imgsz", "64"]
TINY += ["--pretrain-steps", "4", "--finetune-steps", "2"]


@pytest.mark.slow
def test_tiny_demo_runs_every_stage_and_writes_the_report(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    for number, (name, _) in enumerate(STAGES, 1):
        assert f"[{number}/{len(STAGES)}] {name} done" in printed
    assert f"Report: {(out / 'index.html').resolve()}" in printed
    page = (out / "index.html").read_text()
    for picture in ("preview.png", "evaluate/confusion_matrix.png", "http_overlay.jpg"):
        assert f'src="{picture}"' in page
        assert (out / picture).stat().st_size > 1000
    assert "test mIoU" in page and "ONNX agreement with PyTorch" in page
    trained_in = r"<td>{} trained in</td><td>(fp32|bf16), (channels_last|contiguous)</td>"
    assert all(re.search(trained_in.format(stage), page) for stage in ("pretrain", "finetune"))
    assert (out / "bundle" / "model.int8.onnx").is_file()
    assert (out / "predict" / "summary.csv").is_file()
    # the HTTP stage's weed count is the one the runtime finds on that photo
    photo = sorted((out / "field_photos").iterdir())[0]
    labels = Predictor.from_bundle(out / "bundle").predict(read_image(photo)).labels
    expected = len(weed_instances(labels, 2, Settings().min_weed_area_px))
    assert f"<tr><td>HTTP weed instances</td><td>{expected}</td></tr>" in page
