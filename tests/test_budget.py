"""`--time`: durations, fitting steps to a wall-clock budget, and a killed run resumed in it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from labeled_datasets import write_colour_dataset

from weedseg.budget import TimeBudget, parse_duration
from weedseg.errors import WeedsegError
from weedseg.finetune.config import FinetuneConfig
from weedseg.finetune.trainer import run_finetune

ENV = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("45m", 2700.0), ("1.5h", 5400.0), ("90s", 90.0), ("1h30m", 5400.0), ("600", 600.0)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten minutes", "5x", "0", "-3m", "1m-"])
def test_parse_duration_refuses_nonsense(text):
    with pytest.raises(WeedsegError, match="--time"):
        parse_duration(text)


def test_budget_fits_steps_to_measured_step_time():
    budget = TimeBudget(10.0, warmup_steps=0)
    assert budget.fit(1, provisional=100) == 100  # nothing measured yet
    budget.recent.extend([0.5] * 5)  # 0.5 s per step
    budget.spent_before = 3.9 - (time.perf_counter() - budget.clock_start)  # 3.9 s spent
    # 6.1 s left, 1 s set aside: 10 steps fit, the one about to run included
    assert budget.fit(20, provisional=100, reserve=1.0) == 29
    assert not budget.is_last(reserve=1.0)
    budget.spent_before += 5.3  # 0.8 s left: only the step about to run fits
    assert budget.is_last() and budget.fit(20, provisional=100) == 20


@pytest.fixture()
def data(tmp_path):
    return write_colour_dataset(tmp_path / "data", {"train": [(64, 80)] * 4, "val": [(70, 90)]})


def budget_config(data, out, seconds: float, **overrides) -> FinetuneConfig:
    settings = dict(
        data=str(data.root), out=str(out), arch="unet-tiny", time=seconds, batch=2,
        size=64, warmup=2, val_every=10_000, val_tile=64, val_overlap=16, workers=0,
        log_every=5, precision="fp32", memory_format="contiguous", cache_gb=0.1,
    )  # fmt: skip
    return FinetuneConfig(**(settings | overrides))


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_time_budget_stops_on_time_with_the_lr_at_its_final_value(data, tmp_path):
    seconds = 10.0  # the final validation is reserved at least 0.5 s before it is measured
    began = time.perf_counter()
    result = run_finetune(budget_config(data, tmp_path / "run", seconds), log=lambda m: None)
    wall = time.perf_counter() - began
    assert abs(wall - seconds) <= 0.05 * seconds, wall
    lines = [line for line in metrics(tmp_path / "run") if "train/lr" in line]
    assert lines[-1]["step"] == result.steps > 10  # steps were fitted, not the default 1000
    assert lines[-1]["train/lr"] == 0.0  # the cosine reached its end on the last step
    assert max(line["train/lr"] for line in lines) == pytest.approx(1e-3, rel=0.2)
    assert result.best_step == result.steps  # validated and saved at the end


@pytest.mark.slow
def test_killed_run_resumed_under_time_ends_at_the_same_total_budget(data, tmp_path):
    run, seconds = tmp_path / "run", 12.0
    command = [sys.executable, "-m", "weedseg", "finetune", "--data", str(data.root)]
    command += ["--out", str(run), "--arch", "unet-tiny", "--time", f"{seconds}s"]
    command += ["--batch", "2", "--size", "64", "--warmup", "2", "--val-every", "5"]
    command += ["--val-tile", "64", "--val-overlap", "16", "--workers", "0"]
    command += ["--precision", "fp32", "--memory-format", "contiguous", "--log-every", "1"]
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if (run / "metrics.jsonl").is_file() and any(
            line.get("train/time_s", 0) > seconds / 3 for line in metrics(run)
        ):
            break
        time.sleep(0.1)
    assert process.poll() is None, process.stderr.read().decode()[-2000:]
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = max(line.get("train/time_s", 0) for line in metrics(run))
    assert killed_at < seconds

    resumed = subprocess.run([*command, "--resume"], env=ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "s of 12 s" in resumed.stdout + resumed.stderr  # resumed inside the budget
    lines = [line for line in metrics(run) if "train/time_s" in line]
    assert lines[-1]["train/time_s"] == pytest.approx(seconds, rel=0.05)
    assert lines[-1]["train/lr"] == 0.0
