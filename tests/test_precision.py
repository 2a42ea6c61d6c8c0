"""Training precision and memory format: the `auto` rule, bf16 training, float32 checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from labeled_datasets import write_colour_dataset

from weedseg import precision
from weedseg.checkpoint import load_checkpoint
from weedseg.errors import WeedsegError
from weedseg.finetune.config import FinetuneConfig
from weedseg.finetune.trainer import run_finetune
from weedseg.models import build_model, spec_from_name
from weedseg.precision import TrainFormat, choose_format, cpu_flags, native_bf16

CPU = torch.device("cpu")
SHAPE = (2, 3, 64, 64)


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(spec_from_name("unet-tiny"), 3)


def test_native_bf16_reads_the_cpu_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor : 0\nflags : fpu sse avx512f avx512_bf16\n")
    assert "avx512_bf16" in cpu_flags(cpuinfo)
    assert native_bf16(CPU, {"amx_bf16", "sse"}) and native_bf16(CPU, {"avx512_bf16"})
    assert not native_bf16(CPU, {"avx512f", "avx2"})
    assert cpu_flags(tmp_path / "missing") == set()


def test_formats_as_asked_are_not_measured(monkeypatch):
    monkeypatch.setattr(precision, "images_per_second", pytest.fail)
    fmt = choose_format("bf16", "channels_last", tiny_model(), CPU, SHAPE, log=lambda m: None)
    assert (fmt.precision, fmt.memory_format) == ("bf16", "channels_last")
    with pytest.raises(WeedsegError, match="--precision"):
        choose_format("fp16", "auto", tiny_model(), CPU, SHAPE)


@pytest.mark.parametrize(
    ("native", "bf16_speed", "expected"),
    [(False, 30.0, "fp32"), (True, 10.5, "fp32"), (True, 11.5, "bf16")],
)
def test_auto_picks_bf16_only_with_native_support_and_a_clear_gain(
    monkeypatch, native, bf16_speed, expected
):
    speeds = {("fp32", "contiguous"): 8.0, ("fp32", "channels_last"): 10.0}
    speeds |= {("bf16", "contiguous"): 9.0, ("bf16", "channels_last"): bf16_speed}
    timed = []

    def measured(model, fmt, device, shape):
        timed.append((fmt.precision, fmt.memory_format))
        return speeds[fmt.precision, fmt.memory_format]

    monkeypatch.setattr(precision, "native_bf16", lambda device: native)
    monkeypatch.setattr(precision, "images_per_second", measured)
    lines: list[str] = []
    fmt = choose_format("auto", "auto", tiny_model(), CPU, SHAPE, log=lines.append)
    assert (fmt.precision, fmt.memory_format) == (expected, "channels_last")
    assert len(timed) == (4 if native else 2) and "img/s" in lines[0]


def test_images_per_second_leaves_the_model_untouched():
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    speed = precision.images_per_second(model, TrainFormat("bf16", "channels_last"), CPU, SHAPE)
    assert speed > 0
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name  # weights and BN statistics


def test_bf16_autocast_runs_convolutions_in_bf16_and_keeps_weights_float32():
    model = TrainFormat("bf16", "channels_last").apply(tiny_model())
    fmt = TrainFormat("bf16", "channels_last")
    with fmt.autocast(CPU):
        out = model(fmt.batch(torch.rand(SHAPE)))
    assert out.dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert TrainFormat("fp32", "contiguous").autocast(CPU).__class__.__name__ == "nullcontext"


@pytest.mark.slow
def test_bf16_finetune_trains_saves_float32_and_exports_with_parity(tmp_path):
    from weedseg.cli import main

    data = write_colour_dataset(tmp_path / "data", {"train": [(64, 80)] * 4, "val": [(70, 90)]})
    config = FinetuneConfig(
        data=str(data.root), out=str(tmp_path / "run"), arch="unet-tiny", steps=6,
        batch=2, size=64, warmup=1, val_every=3, val_tile=64, val_overlap=16, workers=0,
        log_every=1, precision="bf16", memory_format="auto", cache_gb=0.1,
    )  # fmt: skip
    result = run_finetune(config, log=lambda m: None)
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "precision: bf16" in saved and "memory_format:" in saved
    losses = [line for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all("NaN" not in line and "Infinity" not in line for line in losses)
    loaded = load_checkpoint(result.best_checkpoint)
    tensors = list(loaded.model.state_dict().values())
    assert all(t.dtype == torch.float32 for t in tensors if t.is_floating_point())
    assert np.isfinite(result.best_miou)

    bundle = tmp_path / "bundle"
    args = [str(tmp_path / "run"), "--out", str(bundle), "--imgsz", "64", "--verify-n", "2"]
    assert main(["export", *args]) == 0
    from weedseg.bundle import read_manifest

    verification = read_manifest(bundle).verification
    assert verification["passed"] and verification["agreement"] >= 0.999
