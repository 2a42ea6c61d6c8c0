"""`weedseg retrain`: adapt a base model to a farm's photos and labels, and prove it is better."""

from __future__ import annotations

import argparse
import dataclasses

from weedseg.config_flags import add_config_flags, config_from_args
from weedseg.formatting import format_number

HELP = "adapt a base model to a farm: SMS on its photos, fine-tune on its labels, compare, export"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from weedseg.retrain.config import RetrainConfig

    add_config_flags(parser, RetrainConfig)


def run(args: argparse.Namespace) -> int:
    from weedseg.retrain.config import RetrainConfig
    from weedseg.retrain.workflow import CONFIG_FILE, retrain

    # --resume: the saved recipe; flags given again must equal it
    config = config_from_args(RetrainConfig, args, resume_file=CONFIG_FILE)
    print("retrain:", ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(config).items()))
    result = retrain(config)
    base, new = result.report["base"]["scores"], result.report["new"]["scores"]
    print(f"{'class':<12}{'base IoU':>10}{'new IoU':>10}")
    for name, b in base["per_class"].items():
        new_iou = new["per_class"][name]["iou"]
        print(f"{name:<12}{format_number(b['iou']):>10}{format_number(new_iou):>10}")
    print(f"{'mIoU':<12}{format_number(base['mIoU']):>10}{format_number(new['mIoU']):>10}")
    verdict = "beats" if result.new_beats_base else "does NOT beat"
    comparison = result.report["comparison"]
    print(
        f"The new model {verdict} the base in {comparison['method']} cross-validation on "
        f"{comparison['images']} farm photos; the shipped model trained on all of them."
    )
    print(f"Report: {result.run_dir / 'report.md'}  Bundle: {result.bundle}")
    print(f"Promote: weedseg models promote {result.run_dir}")
    return 0
