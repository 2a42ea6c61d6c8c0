"""`weedseg retrain`: adapt a base model to a farm's photos and labels, and prove it is better."""

from __future__ import annotations

import argparse
import dataclasses

from weedseg.commands.finetune import (
    add_crop_scale_argument,
    add_speed_arguments,
    add_time_argument,
)
from weedseg.formatting import format_number

HELP = "adapt a base model to a farm: SMS on its photos, fine-tune on its labels, compare, export"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from weedseg.retrain.config import BUDGETS, RetrainConfig

    d = {f.name: f.default for f in dataclasses.fields(RetrainConfig)}
    parser.add_argument("--images", required=True, help="the farm's unlabeled photos (a folder)")
    parser.add_argument(
        "--labels", required=True, help="farm labels: weedseg dataset, COCO json or mask export"
    )
    parser.add_argument(
        "--base", required=True, help="registry version, bundle, run folder or checkpoint"
    )
    parser.add_argument("--out", required=True, help="run folder (rerun with --resume)")
    parser.add_argument(
        "--budget",
        choices=list(BUDGETS),
        default=d["budget"],
        help=", ".join(
            f"{k}: {b.pretrain_steps} SMS + {b.finetune_steps} fine-tuning steps"
            for k, b in BUDGETS.items()
        ),
    )
    parser.add_argument("--pretrain-steps", type=int, help="override the budget (0: skip SMS)")
    parser.add_argument("--finetune-steps", type=int, help="override the budget")
    parser.add_argument("--base-data", default="", help="the base's dataset, mixed into training")
    parser.add_argument(
        "--base-mix", type=float, default=d["base_mix"], help="base images per farm image"
    )
    parser.add_argument(
        "--map", dest="label_map", action="append", default=[], help="label rename LABEL=CLASS"
    )
    parser.add_argument("--labels-format", default=d["labels_format"])
    parser.add_argument("--val-split", default=d["val_split"], help="the farm validation split")
    parser.add_argument("--val-share", type=float, default=d["val_share"])
    parser.add_argument("--size", type=int, default=d["size"], help="training crop (x32)")
    add_crop_scale_argument(parser, d["crop_scale"])
    parser.add_argument("--batch", type=int, default=d["batch"])
    parser.add_argument("--pretrain-lr", type=float, default=d["pretrain_lr"])
    parser.add_argument("--finetune-lr", type=float, default=d["finetune_lr"])
    parser.add_argument("--patch", type=int, default=d["patch"], help="SMS mask unit in pixels")
    parser.add_argument("--tile", type=int, default=d["tile"], help="evaluation window (x32)")
    parser.add_argument("--overlap", type=int, default=d["overlap"])
    parser.add_argument("--export-size", type=int, default=d["export_size"])
    parser.add_argument("--overlays", type=int, default=d["overlays"])
    parser.add_argument("--seed", type=int, default=d["seed"])
    parser.add_argument("--workers", type=int, default=d["workers"])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=d["device"])
    add_time_argument(parser)
    add_speed_arguments(parser, d)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")


def run(args: argparse.Namespace) -> int:
    from weedseg.retrain.config import RetrainConfig
    from weedseg.retrain.workflow import retrain

    names = {f.name for f in dataclasses.fields(RetrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    values["time"] = values["time"] or 0.0
    if args.resume:  # the saved recipe; flags given again must equal it
        from weedseg.resume_flags import resume_values
        from weedseg.retrain.workflow import CONFIG_FILE

        values = resume_values(args, values, CONFIG_FILE)
    config = RetrainConfig(**values)
    print("retrain:", ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(config).items()))
    result = retrain(config)
    base, new = result.report["base"]["scores"], result.report["new"]["scores"]
    print(f"{'class':<12}{'base IoU':>10}{'new IoU':>10}")
    for name, b in base["per_class"].items():
        new_iou = new["per_class"][name]["iou"]
        print(f"{name:<12}{format_number(b['iou']):>10}{format_number(new_iou):>10}")
    print(f"{'mIoU':<12}{format_number(base['mIoU']):>10}{format_number(new['mIoU']):>10}")
    verdict = "beats" if result.new_beats_base else "does NOT beat"
    print(f"The new model {verdict} the base on the farm validation split.")
    print(f"Report: {result.run_dir / 'report.md'}  Bundle: {result.bundle}")
    print(f"Promote: weedseg models promote {result.run_dir}")
    return 0
