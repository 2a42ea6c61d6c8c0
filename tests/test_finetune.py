"""Fine-tuning: run folder and best checkpoint, exact resume, transfer from pretraining."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from labeled_datasets import write_colour_dataset

from weedseg.checkpoint import load_checkpoint, load_tensors, save_checkpoint
from weedseg.defaults import LOSSES
from weedseg.errors import WeedsegError
from weedseg.finetune import trainer
from weedseg.finetune.config import FinetuneConfig
from weedseg.finetune.data import plan_data
from weedseg.finetune.losses import build_loss, inverse_sqrt_weights
from weedseg.finetune.trainer import init_model, run_finetune
from weedseg.models import build_model, spec_from_name

TINY = "unet-tiny"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def data(tmp_path):
    return write_colour_dataset(tmp_path / "data", {"train": [(64, 80)] * 4, "val": [(70, 90)]})


def tiny_config(data, out, **overrides) -> FinetuneConfig:
    settings = dict(
        data=str(data.root), out=str(out), arch=TINY, steps=4, batch=2, size=64, warmup=1,
        val_every=2, val_tile=64, val_overlap=16, workers=0, log_every=1,
        precision="fp32", memory_format="contiguous",  # resumed runs are compared bit for bit
    )  # fmt: skip
    return FinetuneConfig(**(settings | overrides))


def test_finetune_command_writes_run_folder_and_best_checkpoint(data, tmp_path, capsys):
    from weedseg.cli import main

    out = tmp_path / "run"
    args = ["finetune", "--data", str(data.root), "--out", str(out), "--arch", TINY]
    args += ["--steps", "4", "--batch", "2", "--size", "64", "--val-every", "2", "--warmup", "1"]
    args += ["--val-tile", "64", "--val-overlap", "16", "--workers", "0", "--device", "cpu"]
    args += ["--input-scale", "0.5"]
    assert main(args) == 0
    assert "best val mIoU" in capsys.readouterr().out
    assert (out / "config.yaml").is_file() and any((out / "tb").iterdir())
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "val/mIoU" in x] == [2, 4]
    assert any("train/loss" in x for x in lines)
    assert all(x["images_seen"] == 2 * x["step"] for x in lines)  # val curves too, batch 2
    assert (out / "images" / "val_000004.jpg").is_file()  # worst val image, side by side

    best = load_checkpoint(out)  # a run folder resolves to checkpoints/best
    assert best.task == "segmentation" and best.path.name == "best"
    for key in ("classes", "mean", "std", "step", "seed", "data", "metrics", "config"):
        assert getattr(best.meta, key) is not None, key
    assert best.meta.class_names == ["soil", "crop", "weed"]
    assert best.meta.metrics["val_mIoU"] == max(x["val/mIoU"] for x in lines if "val/mIoU" in x)
    assert best.meta.data["val_source"] == "split 'val'"
    assert best.meta.input_scale == 0.5  # evaluate and export take it from here
    assert main(args) == 2  # a used run folder is refused without --resume


def test_resume_after_interruption_reaches_the_same_weights(data, tmp_path, monkeypatch):
    straight = run_finetune(tiny_config(data, tmp_path / "straight"), log=lambda _: None)

    real_step = trainer.train_step

    def crash_at_step_3(*args, **kwargs):
        if kwargs["step"] == 3:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(trainer, "train_step", crash_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        run_finetune(tiny_config(data, tmp_path / "resumed"), log=lambda _: None)
    monkeypatch.setattr(trainer, "train_step", real_step)
    resumed = run_finetune(tiny_config(data, tmp_path / "resumed", resume=True), log=print)

    assert resumed.steps == straight.steps == 4
    a = load_tensors(straight.run_dir / "checkpoints" / "last")
    b = load_tensors(resumed.run_dir / "checkpoints" / "last")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)
    assert resumed.best_miou == pytest.approx(straight.best_miou)


def test_init_from_reconstruction_carries_everything_but_the_head(data, tmp_path):
    spec = spec_from_name(TINY)
    pretrained = build_model(spec, out_channels=3)
    meta = {"mean": [0.4, 0.35, 0.3], "std": [0.2, 0.2, 0.2], "step": 100}
    save_checkpoint(
        tmp_path / "pre" / "checkpoints" / "last", pretrained, spec=spec,
        task="reconstruction", meta=meta,
    )  # fmt: skip
    messages: list[str] = []
    config = tiny_config(data, tmp_path / "ft", init=str(tmp_path / "pre"), arch=None)
    model, got_spec, init = init_model(config, num_classes=3, log=messages.append)

    assert got_spec == spec  # the architecture comes from the pretraining checkpoint
    source = pretrained.state_dict()
    head = {"segmentation_head.0.weight", "segmentation_head.0.bias"}
    assert set(init["new"]) == head  # same shape (3 channels) yet not carried: a new task
    assert init["carried"] == len(source) - len(head)
    assert init["mean"] == meta["mean"] and init["std"] == meta["std"]
    for name, tensor in model.state_dict().items():
        if name not in head:
            torch.testing.assert_close(tensor, source[name], msg=name)
    assert not torch.equal(
        model.state_dict()["segmentation_head.0.weight"], source[next(iter(head))]
    )
    assert any(m.startswith("transfer: carried") for m in messages)


def test_init_carry_encoder_leaves_the_decoder_and_head_new(data, tmp_path):
    spec = spec_from_name(TINY)
    pretrained = build_model(spec, out_channels=3)
    save_checkpoint(
        tmp_path / "pre" / "checkpoints" / "last", pretrained, spec=spec,
        task="reconstruction", meta={"mean": [0.4] * 3, "std": [0.2] * 3},
    )  # fmt: skip
    config = tiny_config(data, tmp_path / "ft", init=str(tmp_path / "pre"), init_carry="encoder")
    model, _, init = init_model(config, num_classes=3, log=lambda m: None)
    source = pretrained.state_dict()
    encoder = {name for name in source if name.startswith("encoder.")}
    assert encoder and init["carried"] == len(encoder)
    assert set(init["new"]) == set(source) - encoder  # decoder and head: fresh weights
    for name, tensor in model.state_dict().items():
        if name in encoder:
            torch.testing.assert_close(tensor, source[name], msg=name)
    decoder = next(n for n in source if n.startswith("decoder.") and n.endswith("weight"))
    assert not torch.equal(model.state_dict()[decoder], source[decoder])
    with pytest.raises(WeedsegError, match="--init-carry must be one of"):
        tiny_config(data, tmp_path / "bad", init_carry="decoder")


def test_held_out_share_when_there_is_no_val_split(tmp_path):
    info = write_colour_dataset(tmp_path / "d", {"train": [(32, 32)] * 10})
    config = FinetuneConfig(data=str(info.root), out=str(tmp_path / "r"), val_share=0.2)
    plan = plan_data(info, config)
    assert len(plan.val) == 2 and len(plan.train) == 8
    assert set(plan.val).isdisjoint(plan.train)
    assert "held out" in plan.val_source
    assert plan_data(info, config).val == plan.val  # the same share for every run and seed


def test_auto_class_weights_follow_inverse_sqrt_frequency():
    counts = np.array([900, 100, 0])
    weights = inverse_sqrt_weights(counts)
    assert weights[1] / weights[0] == pytest.approx(3.0)  # 9x rarer -> 3x heavier
    assert (counts / counts.sum() * weights).sum() == pytest.approx(1.0)  # mean pixel weight 1
    assert weights[2] == weights[1]  # absent class: the largest weight


def test_crop_scale_flag_reaches_the_config_and_rejects_bad_ranges() -> None:
    from weedseg.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["finetune", "--data", "d", "--out", "o", "--crop-scale", "0.02,0.12"])
    assert args.crop_scale == (0.02, 0.12)
    assert FinetuneConfig(data="d", out="o", crop_scale=[0.02, 0.12]).crop_scale == (0.02, 0.12)
    with pytest.raises(SystemExit):
        parser.parse_args(["finetune", "--data", "d", "--out", "o", "--crop-scale", "0.5,0.1"])


def test_final_trains_on_every_train_image_without_validation_and_keeps_the_last_step(
    data, tmp_path, capsys
):
    from weedseg.cli import main

    out = tmp_path / "final"
    args = ["finetune", "--data", str(data.root), "--out", str(out), "--arch", TINY, "--final"]
    args += ["--steps", "4", "--batch", "2", "--size", "64", "--val-every", "2", "--warmup", "1"]
    args += ["--workers", "0", "--device", "cpu", "--precision", "fp32"]
    assert main(args) == 0
    assert "no validation: kept the last step 4" in capsys.readouterr().out
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert not any("val/mIoU" in x for x in lines)  # the val split exists but is not used
    best = load_checkpoint(out)
    assert best.path.name == "best" and best.meta.step == 4
    assert best.meta.data["train"] == 4 and best.meta.data["val"] == 0
    assert "--final" in best.meta.data["val_source"]
    last, kept = load_tensors(out / "checkpoints" / "last"), load_tensors(best.path)
    for name in last:
        torch.testing.assert_close(kept[name], last[name], rtol=0, atol=0, msg=name)


def test_val_share_0_without_a_val_split_holds_nothing_out(tmp_path):
    info = write_colour_dataset(tmp_path / "d", {"train": [(64, 64)] * 3})
    config = tiny_config(info, tmp_path / "r", val_share=0.0, steps=3)
    plan = plan_data(info, config)
    assert plan.train == info.splits["train"] and plan.val == []
    messages: list[str] = []
    result = run_finetune(config, log=messages.append)
    assert result.best_miou is None and result.best_step == 3 and result.history == []
    assert load_checkpoint(result.run_dir).meta.step == 3
    assert any("checkpoints/best is the last step" in m for m in messages)
    with pytest.raises(WeedsegError, match="--val-share"):
        run_finetune(tiny_config(info, tmp_path / "bad", val_share=1.0))


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_gives_a_finite_loss_and_a_training_step_lowers_it(name):
    torch.manual_seed(0)
    model = torch.nn.Conv2d(3, 3, kernel_size=3, padding=1)
    images = torch.rand(2, 3, 16, 16)
    masks = torch.randint(0, 3, (2, 16, 16))
    masks[0, :2] = 255  # ignored pixels
    loss_fn = build_loss(name, [0.5, 2.0, 1.5])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    values = []
    for _ in range(3):
        loss = loss_fn(model(images), masks)
        assert torch.isfinite(loss), name
        values.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert values[-1] < values[0], (name, values)


def test_recipe_flags_reach_the_config_and_bad_values_are_refused(tmp_path) -> None:
    from weedseg.cli import build_parser

    flags = ["--rare-share", "0.3", "--loss", "lovasz", "--no-color-jitter", "--final"]
    flags += ["--crop-ratio", "1,1"]
    args = build_parser().parse_args(["finetune", "--data", "d", "--out", "o", *flags])
    assert (args.rare_share, args.loss, args.color_jitter) == (0.3, "lovasz", False)
    assert args.final and args.crop_ratio == (1.0, 1.0)
    info = write_colour_dataset(tmp_path / "d", {"train": [(32, 32)] * 2})
    bad_values = [{"rare_share": 1.5}, {"val_share": -0.1}, {"loss": "focal"}]
    for bad in [*bad_values, {"crop_ratio": (2, 1)}]:
        with pytest.raises(WeedsegError):
            run_finetune(tiny_config(info, tmp_path / "r", **bad))
