"""Pretraining: schedules, a tiny end-to-end run, kill -9 + --resume, torchrun on CPU."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from weedseg.checkpoint import load_checkpoint, load_tensors
from weedseg.commands.pretrain import add_arguments, build_config
from weedseg.errors import WeedsegError
from weedseg.imageio import write_image
from weedseg.masking import PatchGrid
from weedseg.pretrain import PretrainConfig, pretrain
from weedseg.pretrain.engine import NonFiniteLoss, Reconstructor, train_step
from weedseg.pretrain.schedule import interleaved_partitions, plan_phases, warmup_cosine
from weedseg.pretrain.selection import load_maps, score_images

torch.set_num_threads(1)
TINY = dict(arch="unet-tiny", size=64, batch=2, patch=16, workers=0, log_every=1)
# pinned: `auto` times candidates, and a resumed run is compared with an uninterrupted one
TINY |= dict(precision="fp32", memory_format="contiguous")
ENV = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Six small field-like images of odd sizes in nested folders."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(6):
        h, w = 70 + 3 * i, 90 - 2 * i
        yy, xx = np.mgrid[:h, :w]
        soil = np.stack([120 + 30 * np.sin(xx / 7 + i), 90 + 20 * np.cos(yy / 5), 60 + 0 * xx], -1)
        image = soil + rng.normal(0, 8, (h, w, 3))
        image[(yy - h / 2) ** 2 + (xx - w / 3) ** 2 < 80] = (40, 160, 50)  # a "plant"
        write_image(root / f"field{i % 2}" / f"img{i}.png", image.clip(0, 255).astype(np.uint8))
    return root


def test_partitions_cover_every_image_once_and_split_the_budget():
    parts = interleaved_partitions(23, 10)
    assert sorted(i for p in parts for i in p) == list(range(23))
    cfg = PretrainConfig(images="x", out="y", steps=25, partitions=10)
    phases = plan_phases(cfg, 23)
    assert [p.start for p in phases] == [0, 3, 6, 9, 12, 15, 17, 19, 21, 23]
    assert phases[-1].end == 25
    cfg = PretrainConfig(images="x", out="y", epochs=2, batch=4, masking="random")
    assert plan_phases(cfg, 23)[0].steps == 12  # ceil(2 * 23 / 4)
    factor = warmup_cosine(100, 0.1, 0.01)
    assert factor(0) == pytest.approx(0.1) and factor(9) == 1.0
    assert factor(99) == pytest.approx(0.01, abs=1e-3)


def test_difficulty_maps_follow_their_image_through_crop_and_flip(tmp_path):
    from weedseg.data.loaders import UnlabeledImages
    from weedseg.masking import SelectiveMasker
    from weedseg.pretrain.data import PhaseMaps
    from weedseg.pretrain.selection import working_shape

    image = np.zeros((96, 160, 3), np.uint8)
    image[16:48, 96:144] = 255  # a bright block, off-centre so flips move it
    write_image(tmp_path / "a.png", image)
    h, w = working_shape(96, 160, 80)  # maps live at the (smaller) working size
    difficulty = np.zeros((h, w), np.float16)
    difficulty[16 * h // 96 : 48 * h // 96, 96 * w // 160 : 144 * w // 160] = 1.0
    dataset = UnlabeledImages(
        [tmp_path / "a.png"],
        size=64,
        scale=(0.3, 1.0),
        color_jitter=False,
        aux=PhaseMaps({7: difficulty}, [7]),
    )
    grid = PatchGrid(64, 64, 8)
    for seed in range(12):
        torch.manual_seed(seed)
        item = dataset[0]
        bright = grid.pool(item["image"].mean(0)[None, None])[0, 0] > 0.5
        hard = grid.pool(item["aux"][None, None].float())[0, 0]
        if bright.sum() == 0:
            continue
        selected = SelectiveMasker(float(bright.sum()) / grid.num_patches)(hard[None])[0]
        overlap = (selected & bright).sum() / bright.sum()
        assert overlap >= 0.8, f"seed {seed}: masks drifted from the image ({overlap:.2f})"


class MaskShareProbe(Reconstructor):
    """A Reconstructor (identity model) that records the share of pixels each mask hides."""

    def __init__(self):
        super().__init__(torch.nn.Identity())
        self.model.register_parameter("unused", torch.nn.Parameter(torch.zeros(1)))
        self.shares: list[float] = []

    def __call__(self, masked: torch.Tensor, pixel_masks: torch.Tensor) -> torch.Tensor:
        self.shares.append(float(pixel_masks.float().mean()))
        return super().__call__(masked, pixel_masks)


@pytest.mark.parametrize("mask_ratio", [0.25, 0.75])
def test_difficulty_is_scored_at_the_runs_own_mask_ratio(tmp_path, mask_ratio):
    from weedseg.pretrain.engine import choose_masks

    write_image(tmp_path / "a.png", np.full((64, 64, 3), 128, np.uint8))
    cfg = PretrainConfig(
        images="x", out="y", steps=1, size=64, patch=16, mask_ratio=mask_ratio, score_size=64
    )
    mean, std = torch.full((3,), 0.5), torch.full((3,), 0.25)
    cached = MaskShareProbe()  # whole images, before a phase (paper schedule)
    score_images([tmp_path / "a.png"], [0], cached, cfg, mean, std, seed=0)
    online = MaskShareProbe()  # each batch, with the current weights (online schedule)
    generator = torch.Generator().manual_seed(0)
    images = torch.zeros(2, 3, 64, 64)
    choose_masks(cfg, PatchGrid(64, 64, 16), images, None, 1.0, online, mean, std, generator)
    assert cached.shares == [mask_ratio] * cfg.score_masks
    assert online.shares == [mask_ratio] * cfg.score_masks


def test_paper_schedule_masks_are_fixed_by_the_cached_map_not_drawn():
    from weedseg.pretrain.engine import choose_masks

    cfg = PretrainConfig(images="i", out="o", steps=1, mask_ratio=0.5, **TINY)
    grid = PatchGrid(64, 64, 16)  # 4 x 4 patches of 16 px
    patches = torch.rand(2, 4, 4, generator=torch.Generator().manual_seed(0))  # per-patch map
    pixels = patches.repeat_interleave(16, 1).repeat_interleave(16, 2)[:, None]  # [2, 1, 64, 64]
    images, none = torch.rand(2, 3, 64, 64), torch.zeros(3)

    def masks(share: float, seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return choose_masks(cfg, grid, images, pixels, share, None, none, none, generator)[0]

    hardest = patches.flatten(1) >= patches.flatten(1).topk(8, dim=1).values[:, -1:]  # 8 of 16
    for seed in (0, 1, 2):  # the step's map alone fixes each crop's mask: no draw changes it
        torch.testing.assert_close(masks(1.0, seed).flatten(1), hardest)
    mixed = [masks(0.5, seed).flatten(1) for seed in (0, 1, 2)]  # 4 hardest, then 4 at random
    top4 = patches.flatten(1) >= patches.flatten(1).topk(4, dim=1).values[:, -1:]
    assert all(m[top4].all() and (m.sum(1) == 8).all() for m in mixed)
    assert not all(torch.equal(mixed[0], m) for m in mixed[1:])


def test_non_finite_loss_stops_with_a_clear_message():
    cfg = PretrainConfig(images="x", out="y", steps=1, loss="masked", size=32, patch=8)
    weight = torch.nn.Parameter(torch.ones(1))
    optimizer = torch.optim.Adam([weight])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    grid = PatchGrid(32, 32, 8)
    masks = torch.ones(1, 4, 4, dtype=torch.bool)

    def broken(x: torch.Tensor) -> torch.Tensor:
        return x * weight * float("nan")

    with pytest.raises(NonFiniteLoss, match="loss is nan"):
        train_step(
            broken,
            torch.zeros(1, 3, 32, 32),
            masks,
            optimizer,
            scheduler,
            cfg,
            grid,
            torch.ones(3),
            Reconstructor(broken),
        )


def test_paper_schedule_run_scores_each_partition_with_previous_weights(photos, tmp_path):
    out = tmp_path / "run"
    cfg = PretrainConfig(
        images=str(photos),
        out=str(out),
        steps=4,
        partitions=2,
        score_masks=2,
        checkpoint_every=2,
        image_every=4,
        **TINY,
    )
    result = pretrain(cfg, log=lambda m: None)
    assert result.steps == 4
    assert yaml.safe_load((out / "config.yaml").read_text())["schedule"] == "paper"
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4]
    assert [line["images_seen"] for line in lines] == [2, 4, 6, 8]  # batch 2
    assert [line["pretrain/share"] for line in lines] == [0.0, 0.0, 1.0, 1.0]
    assert (out / "images" / "step_000004.png").is_file() and any((out / "tb").iterdir())
    last = load_checkpoint(out)
    assert last.task == "reconstruction" and last.meta.step == 4 and len(last.meta.mean) == 3

    # partition 1 = images 1, 3, 5 (sorted order), each scored once, by the step-2 model
    maps, info = load_maps(out / "selection" / "step_000002.npz")
    assert sorted(maps) == [1, 3, 5] and info["step"] == 2
    previous = load_checkpoint(out / "checkpoints" / "step_000002")
    paths = sorted(photos.rglob("*.png"))
    mean, std = torch.tensor(last.meta.mean), torch.tensor(last.meta.std)
    scorer = Reconstructor(previous.model)
    again = score_images(paths, [1, 3, 5], scorer, cfg, mean, std, info["seed"])
    for index in maps:
        np.testing.assert_allclose(again[index], maps[index], atol=2e-3)


def test_online_schedule_with_cnn_knobs_continues_from_init(photos, tmp_path):
    from weedseg.checkpoint import save_checkpoint
    from weedseg.models import build_model, spec_from_name

    spec = spec_from_name("unet-tiny")
    shipped = {"mean": [0.3, 0.4, 0.2], "std": [0.2, 0.25, 0.15]}
    save_checkpoint(
        tmp_path / "shipped", build_model(spec, 3), spec=spec, task="reconstruction", meta=shipped
    )
    cfg = PretrainConfig(
        images=str(photos),
        out=str(tmp_path / "online"),
        steps=2,
        schedule="online",
        selected_share=0.5,
        ramp=True,
        score_masks=1,
        loss="masked",
        norm_target=True,
        sparse=True,
        color_jitter=False,
        image_every=2,
        init=str(tmp_path / "shipped"),
        **TINY | {"arch": ""},
    )
    messages = []
    result = pretrain(cfg, log=messages.append)
    assert result.steps == 2 and np.isfinite(result.final_loss)
    assert any("--init" in m and "carried" in m for m in messages)
    adapted = load_checkpoint(tmp_path / "online")
    assert adapted.spec == spec and adapted.meta.mean == shipped["mean"]
    assert (tmp_path / "online" / "images" / "step_000002.png").is_file()


def test_input_scale_crops_and_caches_photos_at_the_fine_tuning_scale(photos, tmp_path):
    from weedseg.data.loaders import UnlabeledImages
    from weedseg.data.photo_cache import GIB, PhotoCache

    paths = sorted(photos.rglob("*.png"))
    cache = PhotoCache(tmp_path / "cache", GIB, scale=0.5)
    for cached, remaining in ((None, 0.5), (cache, 1.0)):  # a cache at 0.5 leaves zoom 1 to do
        crops = UnlabeledImages(paths, size=32, cache=cached, input_scale=0.5)
        assert crops.geometry.transforms.transforms[0].input_scale == remaining
        assert crops[0]["image"].shape == (3, 32, 32)

    cfg = PretrainConfig(
        images=str(photos), out=str(tmp_path / "run"), steps=2, masking="random",
        input_scale=0.5, cache_dir=str(tmp_path / "run-cache"), **TINY,
    )  # fmt: skip
    pretrain(cfg, log=lambda m: None)
    assert load_checkpoint(tmp_path / "run").meta.input_scale == 0.5
    # what the crops came from: the photos at half size (70x90 .. 85x80 -> 35x45 .. 43x40)
    half = {(round((70 + 3 * i) / 2), round((90 - 2 * i) / 2), 3) for i in range(6)}
    cached = [np.load(e).shape for e in (tmp_path / "run-cache").glob("*.npy")]
    assert cached and set(cached) <= half
    with pytest.raises(WeedsegError, match="input-scale"):
        PretrainConfig(images="i", out="o", steps=1, input_scale=0.0)


def test_cli_flags_override_config_file_and_resume_keeps_the_recipe(tmp_path):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    (tmp_path / "c.yaml").write_text("patch: 32\nloss: masked\nsteps: 10\n")
    out = tmp_path / "r"
    flags = f"--images p --out {out} --config {tmp_path / 'c.yaml'} --steps 7 --no-color-jitter"
    cfg = build_config(parser.parse_args(flags.split()))
    assert (cfg.patch, cfg.loss, cfg.steps, cfg.color_jitter) == (32, "masked", 7, False)

    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(asdict(cfg)))
    resumed = build_config(parser.parse_args(f"--out {out} --resume --device cpu".split()))
    assert resumed.patch == 32 and resumed.steps == 7 and resumed.resume
    again = build_config(parser.parse_args(f"{flags} --resume --workers 0".split()))
    assert again == replace(cfg, resume=True, workers=0)  # the same command, --resume added
    with pytest.raises(WeedsegError, match=r"--patch 8 \(the run has 32\)") as refused:
        build_config(parser.parse_args(f"{flags} --resume --patch 8".split()))
    assert "--steps" not in str(refused.value)  # only the conflicting flag is named


KILL_AFTER_LOGGING_STEP_3 = """
import os, signal, sys
from weedseg.run_dir import RunDir
log = RunDir.log
def log_then_die(self, step, metrics, **axes):
    log(self, step, metrics, **axes)
    if step == 3:  # before step 3's checkpoint: the run must redo step 3 from step 2's
        os.kill(os.getpid(), signal.SIGKILL)
RunDir.log = log_then_die
from weedseg.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _cli(*args: str, code: str = "from weedseg.cli import main; import sys; sys.exit(main())"):
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=ENV, capture_output=True, text=True, timeout=120
    )


def _flags(photos: Path, out: Path) -> list[str]:
    return [
        "pretrain",
        "--images",
        str(photos),
        "--out",
        str(out),
        "--arch",
        "unet-tiny",
        "--steps",
        "4",
        "--batch",
        "2",
        "--size",
        "64",
        "--patch",
        "16",
        "--partitions",
        "2",
        "--score-masks",
        "1",
        "--checkpoint-every",
        "1",
        "--log-every",
        "1",
        "--workers",
        "0",
        "--seed",
        "3",
        "--precision",  # pinned: `auto` times candidates, which could differ between the runs
        "fp32",
        "--memory-format",
        "contiguous",
    ]


@pytest.mark.slow
def test_kill_9_then_resume_matches_uninterrupted_run(photos, tmp_path):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    whole = build_config(parser.parse_args(_flags(photos, tmp_path / "whole")[1:]))
    pretrain(whole, log=lambda m: None)  # in this process: same single thread as the others
    killed = _cli(*_flags(photos, tmp_path / "killed"), code=KILL_AFTER_LOGGING_STEP_3)
    assert killed.returncode == -9
    resumed = _cli("pretrain", "--out", str(tmp_path / "killed"), "--resume", "--workers", "0")
    assert resumed.returncode == 0, resumed.stderr
    a = load_tensors(tmp_path / "whole" / "checkpoints" / "last")
    b = load_tensors(tmp_path / "killed" / "checkpoints" / "last")
    assert load_checkpoint(tmp_path / "killed").meta.step == 4
    logged = (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in logged] == [1, 2, 3, 4]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_torchrun_two_cpu_processes_write_one_run(photos, tmp_path):
    out = tmp_path / "ddp"
    flags = _flags(photos, out)[1:]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "weedseg",
        "pretrain",
        *flags,
        "--device",
        "cpu",
    ]
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert load_checkpoint(out).meta.step == 4
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # one writer, one line per step


def test_sparse_encoder_rezeroes_masked_positions_and_uses_visible_statistics():
    from weedseg.models import ModelSpec, build_model
    from weedseg.pretrain.sparse import SparseEncoder

    # a ResNet stem (conv1, bn1) at the tiny preset's decoder width
    model = build_model(ModelSpec("unet", "resnet18", (32, 16, 16, 8, 8)), 3).train()
    sparse = SparseEncoder(model)
    visible = torch.ones(2, 64, 64, dtype=torch.bool)
    visible[:, :32, :32] = False  # the top-left quarter is masked
    conv1 = {}
    model.encoder.conv1.register_forward_hook(lambda m, a, out: conv1.update(out=out))
    x = torch.randn(2, 3, 64, 64) * visible[:, None] + 5.0 * ~visible[:, None]
    sparse.set_visible(visible)
    features = model.encoder(x)
    for f in features[1:]:  # every stage is zero where the image is masked
        h, w = f.shape[-2:]
        assert f[..., : h // 2, : w // 2].abs().max() == 0
    seen = conv1["out"].permute(1, 0, 2, 3)[:, visible[:, ::2, ::2]]  # [C, visible positions]
    expected = 0.1 * seen.mean(dim=1)  # momentum 0.1 from a zero running mean
    torch.testing.assert_close(model.encoder.bn1.running_mean, expected, atol=1e-5, rtol=1e-4)
    sparse.set_visible(None)
    dense = model.encoder(x)[2]
    assert dense[..., :8, :8].abs().max() > 0  # hooks idle: an ordinary dense encoder again


def test_time_budget_is_split_over_the_paper_partitions(photos, tmp_path):
    out, seconds = tmp_path / "run", 6.0
    cfg = PretrainConfig(
        images=str(photos), out=str(out), time=seconds, partitions=2, score_masks=1,
        checkpoint_every=10**6, image_every=0, warmup=0.2, **TINY,
    )  # fmt: skip
    began = time.perf_counter()
    result = pretrain(cfg, log=lambda m: None)
    assert abs(time.perf_counter() - began - seconds) <= 0.1 * seconds
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    phases = [[line for line in lines if line["pretrain/phase"] == p] for p in (0, 1)]
    assert all(len(phase) > 3 for phase in phases) and lines[-1]["step"] == result.steps
    for phase in phases:  # each partition's LR cycle ends at its floor (min_lr_ratio x lr)
        assert phase[-1]["pretrain/lr"] == pytest.approx(cfg.lr * cfg.min_lr_ratio)
    # the first partition ends around half the budget (scoring the second is in its share)
    assert phases[0][-1]["pretrain/time_s"] == pytest.approx(seconds / 2, abs=0.15 * seconds)
    assert (out / "selection" / f"step_{phases[0][-1]['step']:06d}.npz").is_file()
