"""Run folders: config + metrics + images + checkpoints, resume state."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from weedseg.checkpoint import CheckpointMeta, load_checkpoint
from weedseg.errors import WeedsegError
from weedseg.models import build_model, spec_from_name
from weedseg.run_dir import RunDir

torch.set_num_threads(1)
SPEC = spec_from_name("unet-tiny")


@dataclass
class Cfg:
    lr: float = 0.1
    size: tuple[int, int] = (64, 64)


def test_run_folder_layout_and_resume_state(tmp_path):
    run = RunDir(tmp_path / "run")
    run.start(Cfg())
    model = build_model(SPEC, 3)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (s + 1))
    model(torch.randn(2, 3, 32, 32)).mean().backward()
    opt.step()
    sched.step()
    run.log(1, {"train/loss": 0.5}, images_seen=2)
    run.write_image("strip.png", np.zeros((8, 8, 3), np.uint8))
    run.save(
        2, model, opt, sched, spec=SPEC, task="reconstruction", meta=CheckpointMeta(seed=0), every=2
    )
    assert run.save_best(model, spec=SPEC, task="segmentation", meta=CheckpointMeta(), score=0.5)
    assert not run.save_best(
        model, spec=SPEC, task="segmentation", meta=CheckpointMeta(), score=0.4
    )
    run.close()
    root = tmp_path / "run"
    assert run.saved_config() == {"lr": 0.1, "size": [64, 64]}
    assert json.loads((root / "metrics.jsonl").read_text())["train/loss"] == 0.5
    assert any((root / "tb").iterdir()) and (root / "images" / "strip.png").is_file()
    assert (root / "checkpoints" / "step_000002.json").is_file()
    assert load_checkpoint(root, which="last").meta.step == 2

    with pytest.raises(WeedsegError, match="already holds a run"):
        RunDir(root).start(Cfg())
    resumed = RunDir(root, resume=True)
    resumed.start(Cfg())
    assert resumed.best_score == 0.5
    model2 = build_model(SPEC, 3)
    opt2 = torch.optim.Adam(model2.parameters(), lr=0.1)
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, lambda s: 1.0 / (s + 1))
    state = resumed.load_state(model2, opt2, sched2)
    assert state.step == 2 and sched2.last_epoch == sched.last_epoch
    assert opt2.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    for a, b in zip(model.state_dict().values(), model2.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_curves_line_up_on_images_seen_across_batch_sizes(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    curves = {}
    for batch in (2, 4):  # the same 8 images, in 4 steps of 2 or 2 steps of 4
        run = RunDir(tmp_path / f"batch{batch}")
        run.start(Cfg())
        for step in range(1, 8 // batch + 1):
            run.log(step, {"train/loss": 1.0 / step}, images_seen=step * batch)
        run.close()
        lines = (tmp_path / f"batch{batch}" / "metrics.jsonl").read_text().splitlines()
        assert json.loads(lines[-1])["images_seen"] == 8
        events = EventAccumulator(str(tmp_path / f"batch{batch}" / "tb")).Reload()
        curves[batch] = {
            tag: [event.step for event in events.Scalars(tag)]
            for tag in ("train/loss", "by_images/train/loss")
        }
    assert curves[2] == {"train/loss": [1, 2, 3, 4], "by_images/train/loss": [2, 4, 6, 8]}
    assert curves[4] == {"train/loss": [1, 2], "by_images/train/loss": [4, 8]}


def test_resume_without_run_fails(tmp_path):
    with pytest.raises(WeedsegError, match="nothing to resume"):
        RunDir(tmp_path / "none", resume=True).start(Cfg())


def test_resume_drops_a_metrics_line_cut_off_by_a_kill(tmp_path):
    run = RunDir(tmp_path / "run")
    run.start(Cfg())
    model = build_model(SPEC, 3)
    for step in (1, 2, 3):
        run.log(step, {"train/loss": 1.0 / step}, images_seen=2 * step)
        if step == 2:
            run.save(2, model, spec=SPEC, task="reconstruction", meta=CheckpointMeta())
    run.close()
    metrics = tmp_path / "run" / "metrics.jsonl"
    with open(metrics, "a", encoding="utf-8") as f:
        f.write('{"step": 4, "time": 17')  # the kill came mid-line

    resumed = RunDir(tmp_path / "run", resume=True)
    resumed.start(Cfg())
    with pytest.warns(RuntimeWarning, match="dropped 1 cut-off line"):
        assert resumed.load_state(build_model(SPEC, 3)).step == 2
    resumed.log(3, {"train/loss": 0.3}, images_seen=6)
    resumed.close()
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert steps == [1, 2, 3]
