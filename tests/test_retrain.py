"""Retraining end to end on synthetic fields with a domain shift, promotion into a live service.

The base model learns light soil in sunshine; the farm has dark soil under clouds. `retrain`
must beat the base in cross-validation on the farm's labels, ship a model trained on all of
them, `models promote` must swap it into a running uvicorn with no failed request, and
`models rollback` must bring the base back.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import torch
import yaml
from uvicorn_server import running_server

from weedseg.cli import main
from weedseg.data.format import DatasetInfo
from weedseg.data.synth import SynthConfig, generate_dataset
from weedseg.errors import WeedsegError
from weedseg.finetune.config import FinetuneConfig
from weedseg.finetune.trainer import run_finetune
from weedseg.imageio import encode_image, read_image
from weedseg.registry.actions import promote, rollback
from weedseg.registry.store import Registry
from weedseg.retrain.base_model import resolve_base
from weedseg.retrain.config import RetrainConfig
from weedseg.retrain.workflow import retrain

KEY = "retrain-test-key"
TINY = "unet-tiny"
FARM_STEPS = 64  # fine-tuning steps per fold and for the shipped model: a clear win on every CPU


def quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def shifted(tmp_path_factory):
    """(base run, base bundle, farm dataset, tmp folder): a base that never saw the farm."""
    from weedseg.export.bundle_export import export_bundle
    from weedseg.export.config import ExportConfig

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("retrain")
    base_data = generate_dataset(
        root / "base_data", SynthConfig(n=10, size=64, seed=1, soil="light", lighting="sun")
    )
    farm = generate_dataset(
        root / "farm", SynthConfig(n=12, size=64, seed=2, soil="dark", lighting="overcast")
    )
    base_run = root / "base_run"
    run_finetune(
        FinetuneConfig(
            data=str(base_data.root), out=str(base_run), arch=TINY, steps=30, batch=4, size=64,
            lr=3e-3, warmup=2, val_every=30, val_tile=64, val_overlap=0, workers=0, device="cpu",
        ),
        log=quiet,
    )  # fmt: skip
    export_bundle(
        ExportConfig(
            source=str(base_run), out=str(root / "base_bundle"), imgsz=64, dynamic=True,
            min_size=32, max_size=128, verify_n=2,
        )
    )  # fmt: skip
    yield base_run, root / "base_bundle", farm, root
    torch.set_num_threads(threads)


def tiny_retrain(shifted, out, **overrides) -> RetrainConfig:
    _, bundle, farm, _ = shifted
    settings = dict(
        images=str(farm.root / "images"), labels=str(farm.root), base=str(bundle), out=str(out),
        budget="tiny", pretrain_steps=2, finetune_steps=FARM_STEPS, size=64, batch=4, tile=64,
        overlap=0, export_size=64, overlays=2, workers=0, device="cpu", folds=2,
    )  # fmt: skip
    return RetrainConfig(**(settings | overrides))


@pytest.fixture(scope="module")
def retrained(shifted):
    out = shifted[3] / "run"
    return retrain(tiny_retrain(shifted, out), log=quiet)


def test_retrain_beats_the_base_in_cross_validation(shifted, retrained):
    report = retrained.report
    base, new = report["base"]["scores"], report["new"]["scores"]
    assert retrained.new_beats_base and new["mIoU"] > base["mIoU"] + 0.03, (base, new)
    assert report["base"]["scored_from"].startswith("bundle")
    comparison = report["comparison"]
    assert comparison["method"] == "2-fold" and comparison["images"] == 12
    assert base["images"] == new["images"] == 12  # every labelled photo scored once, held out
    assert sum(map(sum, new["confusion_matrix"])) == 12 * 64 * 64  # pooled over all of them
    assert report["data"]["farm_labels"] == 12 and report["budget"]["finetunes"] == 3
    run = retrained.run_dir
    markdown = (run / "report.md").read_text()
    assert "| crop |" in markdown and "| weed |" in markdown and "beats" in markdown
    assert "2-fold cross-validation on the farm's 12 labelled photos" in markdown
    assert json.loads((run / "report.json").read_text())["new_beats_base"] is True
    assert len(report["overlays"]) == 2 and all((run / p).is_file() for p in report["overlays"])
    # the farm's photos are pretrained on at the scale the base works at
    base_scale = yaml.safe_load((shifted[0] / "config.yaml").read_text())["input_scale"]
    assert (
        yaml.safe_load((run / "pretrain" / "config.yaml").read_text())["input_scale"] == base_scale
    )
    panel = read_image(run / report["overlays"][0])
    assert panel.shape[1] > 4 * panel.shape[0] // 2  # four panels side by side
    assert (retrained.bundle / "weedseg.json").is_file()
    for stage in ("pretrain", "finetune", "folds/fold-1"):  # crop scale reaches all training
        config = yaml.safe_load((run / stage / "config.yaml").read_text())
        assert config["crop_scale"] is None  # native scale, chosen per photo


def test_evaluate_takes_the_retrain_run_folder_as_its_model(retrained, tmp_path) -> None:
    run = retrained.run_dir
    out = tmp_path / "evaluation"
    args = ["evaluate", "--model", str(run), "--data", str(run / "data"), "--split", "farm"]
    assert main([*args, "--out", str(out), "--tile", "64", "--overlap", "0"]) == 0
    report = json.loads((out / "report.json").read_text())
    new = retrained.report["new"]
    assert Path(report["model"]) == Path(new["checkpoint"])  # the shipped fine-tuned weights
    # on the photos it trained on, the shipped model beats the base, which never saw the farm
    assert report["metrics"]["mIoU"] > retrained.report["base"]["scores"]["mIoU"]


def test_crop_scale_flag_reaches_the_config() -> None:
    from weedseg.cli import build_parser

    args = build_parser().parse_args(
        ["retrain", "--images", "i", "--labels", "l", "--base", "b", "--out", "o",
         "--crop-scale", "0.02,0.2"]
    )  # fmt: skip
    assert args.crop_scale == (0.02, 0.2)
    native = build_parser().parse_args(
        ["retrain", "--images", "i", "--labels", "l", "--base", "b", "--out", "o"]
    )
    assert native.crop_scale is None
    from_yaml = RetrainConfig(images="i", labels="l", base="b", out="o", crop_scale=[0.02, 0.2])
    assert from_yaml.crop_scale == (0.02, 0.2)  # a resumed run reads a list back from YAML


def test_finished_and_killed_stages_resume(shifted, retrained):
    run = retrained.run_dir
    (run / "stages" / "finetune.json").unlink()  # as if killed after its last checkpoint
    (run / "stages" / "compare.json").unlink()
    lines: list[str] = []
    again = retrain(tiny_retrain(shifted, run, resume=True), log=lines.append)
    assert "[pretrain] finished earlier, skipped" in lines
    assert "[fold-2] finished earlier, skipped" in lines
    assert "[export] finished earlier, skipped" in lines
    assert any(line.startswith(f"resumed at step {FARM_STEPS} of {FARM_STEPS}") for line in lines)
    assert again.report["new"]["scores"]["mIoU"] == retrained.report["new"]["scores"]["mIoU"]
    with pytest.raises(WeedsegError, match="already holds a retraining run"):
        retrain(tiny_retrain(shifted, run), log=quiet)


def test_promote_swaps_the_live_service_without_a_failed_request(shifted, retrained, tmp_path):
    _, base_bundle, farm, _ = shifted
    registry = Registry(tmp_path / "registry")
    assert promote(registry, str(base_bundle)).version.id == "v0001"
    frame = encode_image(read_image(farm.image_path(farm.split("val")[0])), ".png")
    env = {
        "WEEDSEG_BUNDLE": str(registry.version("v0001").bundle),
        "WEEDSEG_RELOAD_ROOT": str(registry.root),
        "WEEDSEG_API_KEYS": KEY,
        "WEEDSEG_ADMIN_KEYS": KEY,  # the registry reloads the service with the same key
    }
    statuses: Counter = Counter()
    models: Counter = Counter()
    stop = threading.Event()
    with running_server(env) as (url, _):

        def robot() -> None:
            with httpx.Client(base_url=url, headers={"x-api-key": KEY}, timeout=30) as client:
                while not stop.is_set():
                    r = client.post("/v1/segment", params={"format": "png"}, content=frame)
                    statuses[r.status_code] += 1
                    models[r.headers.get("x-weedseg-model", "")] += 1

        robots = [threading.Thread(target=robot) for _ in range(3)]
        for t in robots:
            t.start()
        try:
            time.sleep(0.3)
            promoted = promote(registry, str(retrained.run_dir), service=url, api_key=KEY)
            served = httpx.get(f"{url}/v1/model", headers={"x-api-key": KEY}).json()["bundle"]
            time.sleep(0.3)
            back = rollback(registry, service=url, api_key=KEY)
            restored = httpx.get(f"{url}/v1/model", headers={"x-api-key": KEY}).json()["bundle"]
            time.sleep(0.3)
        finally:
            stop.set()
            for t in robots:
                t.join()
    assert (
        promoted.version.id == "v0002"
        and promoted.comparison["candidate"] > (promoted.comparison["current"])
    )
    assert served.endswith("v0002/bundle") and restored.endswith("v0001/bundle")
    assert back.version.id == "v0001" and registry.current().id == "v0001"
    assert set(statuses) == {200}, statuses
    assert len(models) >= 2  # answers came from both models
    lineage = registry.version("v0002").info["lineage"]
    assert (
        lineage["base"]["bundle"] == str(base_bundle)
        and lineage["budget"]["finetune_steps"] == FARM_STEPS
    )
    again = resolve_base(registry.version("v0002").root)  # retrainable from the registry
    assert again.bundle.name == "bundle" and again.checkpoint.with_suffix(".json").is_file()


def test_bad_inputs_are_clear_errors_that_write_nothing(shifted, tmp_path, capsys):
    base_run, base_bundle, farm, _ = shifted
    common = ["retrain", "--images", str(farm.root / "images"), "--labels", str(farm.root)]
    out = tmp_path / "run"

    (tmp_path / "empty").mkdir()
    args = ["retrain", "--images", str(tmp_path / "empty"), "--labels", str(farm.root)]
    assert main([*args, "--base", str(base_bundle), "--out", str(out)]) == 2
    assert "no images found" in capsys.readouterr().err

    coco = tmp_path / "coco.json"
    coco.write_text(
        json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "thistle"}]})
    )
    args = [*common[:3], "--labels", str(coco), "--base", str(base_run), "--out", str(out)]
    assert main(args) == 2
    assert "unknown class name(s) 'thistle'" in capsys.readouterr().err
    assert not (out / "labels").exists() and not (out / "stages" / "labels.json").exists()
    assert not (out / "retrain.yaml").exists()  # fixing the labels and rerunning just works

    damaged = tmp_path / "damaged"
    shutil.copytree(base_bundle, damaged)
    (damaged / "model.onnx").write_bytes((damaged / "model.onnx").read_bytes()[:-8])
    out2 = tmp_path / "run2"
    assert main([*common, "--base", str(damaged), "--out", str(out2)]) == 2
    assert "fails its checksum" in capsys.readouterr().err
    assert not out2.exists()
    registry = tmp_path / "registry"
    assert main(["models", "--registry", str(registry), "promote", str(damaged)]) == 2
    assert not registry.exists() or not any(registry.rglob("*.onnx"))


def test_a_run_killed_in_a_fold_resumes_and_ships_a_model_trained_on_every_label(shifted, tmp_path):
    from weedseg.checkpoint import load_checkpoint
    from weedseg.data.format import linked_dataset

    _, _, farm, _ = shifted
    labelled = farm.split("train")[:3]  # a farm with three labels: leave-one-out
    labels = linked_dataset(farm.root, tmp_path / "labels", {"train": labelled}, "3 labels")
    run = tmp_path / "run"
    cfg = tiny_retrain(
        shifted, run, labels=str(labels.root), pretrain_steps=0, finetune_steps=4, overlays=1,
        folds=0,
    )  # fmt: skip

    class Killed(Exception):
        pass

    lines: list[str] = []

    def kill_in_fold_2(line: str) -> None:
        lines.append(line)
        if line.startswith("data:") and "[fold-2] ..." in lines:  # fold 2's fine-tune starts
            raise Killed

    with pytest.raises(Killed):
        retrain(cfg, log=kill_in_fold_2)
    assert (run / "stages" / "fold-1.json").is_file()
    assert not (run / "stages" / "fold-2.json").exists()
    lines = []
    result = retrain(replace(cfg, resume=True), log=lines.append)
    assert "[fold-1] finished earlier, skipped" in lines and "[fold-2] ..." in lines
    comparison = result.report["comparison"]
    assert comparison["method"] == "leave-one-out" and comparison["folds"] == 3
    held = [stem for fold in comparison["fold_stems"] for stem in fold]
    assert sorted(held) == sorted(f"farm-{s}" for s in labelled)
    for k in (1, 2, 3):  # each fold model trained on the two other photos
        fold = load_checkpoint(run / "folds" / f"fold-{k}" / "checkpoints" / "last").meta.data
        assert fold["train"] == 2 and fold["val"] == 0
    shipped = load_checkpoint(Path(result.report["new"]["checkpoint"])).meta
    assert shipped.data["train"] == 3 and shipped.data["val"] == 0  # every label, none held out
    assert shipped.config["final"] and shipped.config["train_split"] == "train"
    data = DatasetInfo.load(run / "data")
    assert sorted(data.split("train")) == sorted(f"farm-{s}" for s in labelled)


def test_training_set_mixes_base_images_into_every_fold(tmp_path):
    from labeled_datasets import write_colour_dataset

    from weedseg.classes import ClassInfo
    from weedseg.retrain.farm_data import build_training_set, check_same_classes

    farm = write_colour_dataset(tmp_path / "farm", {"train": [(32, 32)] * 4, "val": [(32, 32)]})
    base = write_colour_dataset(tmp_path / "base", {"train": [(32, 32)] * 6}, seed=1)
    cfg = RetrainConfig(images="x", labels="x", base="x", out="x", base_data="x", base_mix=0.5)
    record = build_training_set(farm, base, cfg, tmp_path / "data")
    data = DatasetInfo.load(tmp_path / "data")
    assert record["farm_labels"] == 5 and record["base_train"] == 2  # val photos are labels too
    assert len(record["folds"]) == 5  # leave-one-out
    farm_stems = data.split("farm")
    assert len(farm_stems) == 5 and all(s.startswith("farm-") for s in farm_stems)
    mixed = [s for s in data.split("train") if s.startswith("base-")]
    assert sorted(data.split("train")) == sorted(farm_stems + mixed) and len(mixed) == 2
    for k, held in enumerate(record["folds"], start=1):
        assert data.split(f"fold-{k}") == held
        train = data.split(f"fold-{k}-train")
        assert sorted(s for s in train if s.startswith("farm-")) == sorted(
            set(farm_stems) - set(held)
        )
        assert [s for s in train if s.startswith("base-")] == mixed  # the same in every fold
    assert data.image_path(farm_stems[0]).stat().st_nlink == 2  # hard link, no copy
    other = DatasetInfo(
        tmp_path, classes=(ClassInfo("soil", (0, 0, 0)), ClassInfo("tree", (1, 1, 1)))
    )
    with pytest.raises(WeedsegError, match="unknown class name.*tree"):
        check_same_classes(other, farm.classes)
