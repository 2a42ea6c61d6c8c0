"""`weedseg evaluate`: full-resolution scores of a segmentation checkpoint on a dataset split."""

from __future__ import annotations

import argparse

from weedseg.defaults import TTA_MODES
from weedseg.formatting import format_number

HELP = "evaluate a segmentation model on a labeled split (mIoU, per-class IoU, report folder)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        required=True,
        help="fine-tuning run folder or checkpoint; also a retrain run folder, a registry version "
        "or a bundle whose checkpoint is on this machine",
    )
    parser.add_argument("--data", required=True, help="labeled dataset root (dataset.yaml)")
    parser.add_argument("--split", default="test", help="split to evaluate (default: test)")
    parser.add_argument("--out", required=True, help="report folder to write")
    parser.add_argument("--tile", type=int, default=512, help="sliding-window size (x32)")
    parser.add_argument("--overlap", type=int, default=64, help="window overlap in pixels")
    parser.add_argument("--batch", type=int, default=4, help="windows per forward pass")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="resize images first (1.0 = full resolution)"
    )
    parser.add_argument(
        "--input-scale",
        type=float,
        help="resize images by this factor for the model, score at full resolution "
        "(default: the checkpoint's own, from weedseg finetune --input-scale)",
    )
    parser.add_argument(
        "--plant-vote",
        action="store_true",
        help="score the class map after the plant vote (one class per plant region)",
    )
    parser.add_argument(
        "--tta",
        choices=TTA_MODES,
        default="none",
        help="test-time augmentation: flip averages each tile with its two mirror images "
        "(3x the model time), as weedseg predict --tta",
    )
    parser.add_argument("--worst", type=int, default=4, help="overlays of the N worst images")
    parser.add_argument("--which", choices=["best", "last"], help="checkpoint of a run folder")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--force", action="store_true", help="replace an existing report folder")


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from weedseg.evaluate.evaluator import EvaluateConfig, run_evaluate

    config = EvaluateConfig(
        model=args.model,
        data=args.data,
        split=args.split,
        out=args.out,
        tile=args.tile,
        overlap=args.overlap,
        batch=args.batch,
        scale=args.scale,
        input_scale=args.input_scale,
        plant_vote=args.plant_vote,
        tta=args.tta,
        worst=args.worst,
        which=args.which,
        device=args.device,
        force=args.force,
    )
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
