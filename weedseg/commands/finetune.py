"""`weedseg finetune`: train a segmenter on labeled images, starting from a pretraining run."""

from __future__ import annotations

import argparse
import dataclasses
import os

from weedseg.config_flags import add_config_flags, config_from_args
from weedseg.finetune.config import FinetuneConfig

HELP = "fine-tune a segmenter on a labeled dataset (from a pretraining run or from scratch)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_flags(parser, FinetuneConfig)


def run(args: argparse.Namespace) -> int:
    from weedseg.finetune.trainer import run_finetune

    # --resume: the saved recipe (train_format included); flags given again must equal it
    config = config_from_args(FinetuneConfig, args, resume_file="config.yaml")
    is_main = int(os.environ.get("RANK", "0")) == 0  # under torchrun, rank 0 speaks
    if is_main:
        print("finetune:", ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(config).items()))
    result = run_finetune(config)
    if not is_main:
        return 0
    if result.best_miou is None:
        print(f"no validation: kept the last step {result.best_step}: {result.best_checkpoint}")
    else:
        print(
            f"best val mIoU {result.best_miou:.4f} at step {result.best_step}: "
            f"{result.best_checkpoint}"
        )
    print(f"Evaluate: weedseg evaluate --model {result.run_dir} --data {config.data} --out REPORT")
    return 0
