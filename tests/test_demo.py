"""`weedseg demo`: runs every stage on a tiny synthetic dataset and says where outputs are."""

from __future__ import annotations

import html
import json
import re
import shutil
import time
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from labeled_datasets import write_colour_dataset
from weedseg.service.app import create_app
from weedseg.service.settings import Settings

from weedseg.bundle import read_manifest
from weedseg.cli import main
from weedseg.commands import demo
from weedseg.commands.demo import STAGES
from weedseg.imageio import encode_image, read_image
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


def segment_over_http(bundle: Path, photo: Path) -> dict:
    """The service's JSON answer for one photo, asked as the demo's serve stage asks it."""
    with TestClient(create_app(Settings(bundle=str(bundle)))) as client:
        for _ in range(200):
            if client.get("/readyz").status_code == 200:
                break
            time.sleep(0.02)
        answer = client.post(
            "/v1/segment",
            params={"format": "json", "mask": "none"},
            content=encode_image(read_image(photo), ".png"),
            headers={"content-type": "image/png"},
        )
    assert answer.status_code == 200, answer.text
    return answer.json()


def page_rows(page: str) -> dict[str, str]:
    """The Numbers table of the demo page: label -> the text shown."""
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", page)
    return {html.unescape(k): html.unescape(v) for k, v in rows}


def test_report_page_shows_each_number_as_its_stage_produced_it(tmp_path, one_torch_thread):
    """The demo's page from real stage products of tiny runs (the 5-minute demo is too slow
    for this check): every number on it is the one in the run, report, manifest or answer."""
    from weedseg.export.bundle_export import export_bundle
    from weedseg.export.config import ExportConfig

    from weedseg.evaluate.evaluator import EvaluateConfig, run_evaluate
    from weedseg.finetune.config import FinetuneConfig
    from weedseg.finetune.trainer import run_finetune
    from weedseg.pretrain.config import PretrainConfig
    from weedseg.pretrain.trainer import pretrain

    data = write_colour_dataset(
        tmp_path / "data", {"train": [(64, 64)] * 4, "val": [(64, 64)], "test": [(64, 64)] * 2}
    )
    pool = tmp_path / "pool"
    pool.mkdir()
    for stem in data.split("train"):
        shutil.copyfile(data.image_path(stem), pool / data.images[stem])
    tiny = dict(arch="unet-tiny", size=64, batch=2, workers=0, device="cpu")
    tiny |= dict(precision="fp32", memory_format="contiguous")
    pre = pretrain(
        PretrainConfig(images=str(pool), out=str(tmp_path / "pretrain"), steps=2, **tiny)
    )
    fine = run_finetune(
        FinetuneConfig(
            data=str(data.root), out=str(tmp_path / "finetune"), init=str(tmp_path / "pretrain"),
            steps=2, val_every=2, val_tile=64, val_overlap=0, **tiny,
        ),
        log=lambda _: None,
    )  # fmt: skip
    run_evaluate(
        EvaluateConfig(
            model=str(tmp_path / "finetune"), data=str(data.root), out=str(tmp_path / "evaluate"),
            tile=64, overlap=0, device="cpu", progress=False,
        )
    )  # fmt: skip
    manifest = export_bundle(
        ExportConfig(
            source=str(tmp_path / "finetune"), out=str(tmp_path / "bundle"), imgsz=64,
            dynamic=True, min_size=32, max_size=128, verify_n=2,
        )
    )  # fmt: skip
    # INT8 needs 50 calibration photos; its entry as export records it
    int8 = {"agreement": 0.98713, "miou_delta_points": -0.4167, "cpu_speedup": 1.7321}
    answer = segment_over_http(tmp_path / "bundle", data.image_path(data.split("test")[0]))

    state = demo.DemoState()
    state.numbers |= demo.pretrain_numbers(pre.images_per_second, tmp_path / "pretrain")
    state.numbers |= demo.finetune_numbers(fine.best_miou, tmp_path / "finetune")
    evaluation = json.loads((tmp_path / "evaluate" / "report.json").read_text())
    state.numbers |= demo.evaluate_numbers(evaluation)
    state.numbers |= demo.export_numbers(manifest.model_copy(update={"int8": int8}))
    state.numbers |= demo.http_numbers(answer)
    demo.stage_report(demo.DemoConfig(out=tmp_path, arch="unet-tiny"), state)
    shown = page_rows((tmp_path / "index.html").read_text())

    def trained_in(run: str) -> str:
        chosen = yaml.safe_load((tmp_path / run / "config.yaml").read_text())["train_format"]
        return f"{chosen['precision']}, {chosen['memory_format']}"

    metrics = evaluation["metrics"]
    expected: dict[str, object] = {
        "pretrain images/s": pre.images_per_second,
        "pretrain trained in": "fp32, contiguous",
        "val mIoU (best)": fine.best_miou,
        "finetune trained in": trained_in("finetune"),
        "test mIoU": metrics["mIoU"],
        **{f"test IoU {name}": c["iou"] for name, c in metrics["per_class"].items()},
        "ONNX agreement with PyTorch": read_manifest(tmp_path / "bundle").verification["agreement"],
        **{f"INT8 {key}": value for key, value in int8.items()},
        "HTTP weed instances": answer["weed_count"],
        "HTTP class fractions": answer["fractions"],
    }
    assert trained_in("pretrain") == "fp32, contiguous"
    assert set(shown) == set(expected) and len(metrics["per_class"]) == 3
    assert answer["weed_count"] == len(answer["weeds"])
    for label, value in expected.items():
        if isinstance(value, dict):  # "soil 0.8123, crop 0.1001, weed 0.0876"
            pairs = [item.rsplit(" ", 1) for item in shown[label].split(", ")]
            assert {k: float(v) for k, v in pairs} == pytest.approx(value, abs=5e-5), label
        elif isinstance(value, float):
            assert float(shown[label]) == pytest.approx(value, abs=5e-5), label
        else:
            assert shown[label] == str(value), label
