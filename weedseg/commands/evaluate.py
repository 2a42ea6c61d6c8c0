"""`weedseg evaluate`: full-resolution scores of a segmentation checkpoint on a dataset split."""

from __future__ import annotations

import argparse

from weedseg.config_flags import add_config_flags, config_from_args
from weedseg.evaluate.config import EvaluateConfig
from weedseg.formatting import format_number

HELP = "evaluate a segmentation model on a labeled split (mIoU, per-class IoU, report folder)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_flags(parser, EvaluateConfig)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from weedseg.evaluate.evaluator import run_evaluate

    config = config_from_args(EvaluateConfig, args)
    print("evaluate:", ", ".join(f"{k}={v}" for k, v in asdict(config).items()))
    report = run_evaluate(config)
    scores = report["metrics"]
    print(f"{'class':<12}{'IoU':>10}{'recall':>10}{'precision':>10}")
    for name, c in scores["per_class"].items():
        cells = "".join(f"{format_number(c[key]):>10}" for key in ("iou", "recall", "precision"))
        print(f"{name:<12}{cells}")
    print(
        f"mIoU {format_number(scores['mIoU'])}  aAcc {format_number(scores['aAcc'])}"
        f"  mAcc {format_number(scores['mAcc'])}"
        f"  ({report['images']} images, {len(report['skipped'])} skipped)"
    )
    consistency = report["consistency"]
    print(
        f"mixed-region rate {format_number(consistency['mixed_region_rate'])} (ground truth "
        f"{format_number(consistency['mixed_region_rate_ground_truth'])}), crop plants kept "
        f"{format_number(consistency['crop_plants_kept'])}, class changes across tile-core borders "
        f"{format_number(consistency['border_disagreement'])} (beside them "
        f"{format_number(consistency['beside_border_disagreement'])})"
    )
    print(f"Speed: {report['speed_ms_per_image']:.1f} ms per image (tiling included)")
    print(f"Report: {config.out}/report.md")
    return 0
