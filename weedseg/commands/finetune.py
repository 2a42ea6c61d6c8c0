"""`weedseg finetune`: train a segmenter on labeled images, starting from a pretraining run."""

from __future__ import annotations

import argparse
import dataclasses
import os

from weedseg.defaults import DEFAULT_ARCH, LOSSES, MEMORY_FORMATS, PRECISIONS
from weedseg.finetune.config import FinetuneConfig

HELP = "fine-tune a segmenter on a labeled dataset (from a pretraining run or from scratch)"

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(FinetuneConfig)}
SPEED_FIELDS = ("precision", "memory_format", "cache_gb", "cache_dir")  # add_speed_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = _DEFAULTS
    parser.add_argument("--data", required=True, help="labeled dataset root (dataset.yaml)")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument(
        "--init", default=d["init"], help="pretraining run or checkpoint, or none (random init)"
    )
    parser.add_argument(
        "--arch", help=f"model preset or arch:encoder (default: the init's, else {DEFAULT_ARCH})"
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=d["steps"], help="optimizer steps")
    length.add_argument("--epochs", type=float, help="passes over the train images (sets steps)")
    add_time_argument(length)
    parser.add_argument("--batch", type=int, default=d["batch"], help="images per step per GPU")
    parser.add_argument("--size", type=int, default=d["size"], help="training crop size (x32)")
    add_crop_scale_argument(parser, d["crop_scale"])
    parser.add_argument(
        "--input-scale",
        type=float,
        default=d["input_scale"],
        help="the model works on photos resized by this factor (crops, validation, the bundle; "
        "0.5 = a quarter of the pixels; default 1)",
    )
    parser.add_argument(
        "--crop-ratio",
        type=ratio_range,
        default=d["crop_ratio"],
        help="MIN,MAX width/height of a training crop's box before it is resized to a square "
        "(default 0.75,1.333; 1,1: no aspect jitter)",
    )
    parser.add_argument(
        "--rare-share",
        type=float,
        default=d["rare_share"],
        help="share of training crops centred on a crop or weed pixel (a class present in the "
        "photo, chosen uniformly, then one of its pixels; default 0: all crops random)",
    )
    parser.add_argument(
        "--color-jitter",
        action=argparse.BooleanOptionalAction,
        default=d["color_jitter"],
        help="jitter brightness, contrast, saturation and hue of training crops (default on)",
    )
    parser.add_argument("--lr", type=float, default=d["lr"], help="AdamW peak learning rate")
    parser.add_argument("--weight-decay", type=float, default=d["weight_decay"])
    parser.add_argument("--warmup", type=int, default=d["warmup"], help="warmup steps")
    parser.add_argument(
        "--loss",
        choices=LOSSES,
        default=d["loss"],
        help="ce+dice: class-weighted cross-entropy + Dice; jaccard: soft IoU (class-weighted); "
        "lovasz: Lovasz-softmax (unweighted)",
    )
    parser.add_argument(
        "--class-weights",
        choices=["auto", "none"],
        default=d["class_weights"],
        help="auto: 1/sqrt of each class's train pixel frequency (cross-entropy term)",
    )
    parser.add_argument("--train-split", default=d["train_split"])
    parser.add_argument(
        "--val-split", default=d["val_split"], help="validation split; if missing, hold out train"
    )
    parser.add_argument(
        "--val-share",
        type=float,
        default=d["val_share"],
        help="share of train held out when there is no val split (0: no validation, the last "
        "step is kept)",
    )
    parser.add_argument(
        "--final",
        action="store_true",
        help="train on every train image without validation (even with a val split) and keep "
        "the last step: the model to ship once the recipe is chosen",
    )
    parser.add_argument("--val-every", type=int, default=d["val_every"], help="validate every N")
    parser.add_argument("--val-tile", type=int, default=d["val_tile"])
    parser.add_argument("--val-overlap", type=int, default=d["val_overlap"])
    parser.add_argument(
        "--val-scale", type=float, default=d["val_scale"], help="<1 validates downscaled (faster)"
    )
    parser.add_argument("--log-every", type=int, default=d["log_every"])
    parser.add_argument(
        "--checkpoint-every", type=int, default=d["checkpoint_every"], help="keep step_N copies"
    )
    parser.add_argument("--seed", type=int, default=d["seed"])
    parser.add_argument("--workers", type=int, default=d["workers"], help="data loader workers")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=d["device"])
    add_speed_arguments(parser, d)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")


def add_time_argument(parser) -> None:
    """`--time`, shared by the training commands (pretrain, finetune, retrain)."""
    parser.add_argument(
        "--time",
        type=duration,
        help="wall-clock budget (45m, 1.5h, 600s): train until it is spent, the LR schedule "
        "fitted to it, then validate and save (the total across --resume)",
    )


def add_speed_arguments(parser: argparse.ArgumentParser, defaults: dict) -> None:
    """--precision, --memory-format and the decoded-photo cache, shared by the training commands."""
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=defaults["precision"],
        help="auto: bf16 autocast where the CPU/GPU has native bf16 and a short measurement shows "
        "it faster for this model, else fp32 (checkpoints are float32 either way)",
    )
    parser.add_argument(
        "--memory-format",
        choices=MEMORY_FORMATS,
        default=defaults["memory_format"],
        help="auto: the faster of channels_last and contiguous, measured",
    )
    parser.add_argument(
        "--cache-gb",
        type=float,
        default=defaults["cache_gb"],
        help="size limit of the decoded-photo cache in GiB (0: decode each crop's photo)",
    )
    parser.add_argument(
        "--cache-dir", default=defaults["cache_dir"], help="cache folder (default RUN/cache/photos)"
    )


def duration(text: str) -> float:
    """argparse type of --time: seconds."""
    from weedseg.budget import parse_duration
    from weedseg.errors import WeedsegError

    try:
        return parse_duration(text)
    except WeedsegError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_crop_scale_argument(parser: argparse.ArgumentParser, default) -> None:
    """`--crop-scale`, shared by the commands that train on crops (finetune, retrain)."""
    parser.add_argument(
        "--crop-scale",
        type=crop_scale_range,
        default=default,
        help="MIN,MAX share of the photo's area per training crop, or 'native' (default: "
        "chosen per photo so plants keep 0.5-1.4x their pixel size, as inference sees them)",
    )


def ratio_range(text: str) -> tuple[float, float]:
    """`--crop-ratio`: MIN,MAX width/height, 0 < MIN <= MAX."""
    low, _, high = text.partition(",")
    try:
        ratio = (float(low), float(high))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX (e.g. 1,1), got {text!r}") from None
    if not 0 < ratio[0] <= ratio[1]:
        raise argparse.ArgumentTypeError(f"need 0 < MIN <= MAX, got {text!r}")
    return ratio


def crop_scale_range(text: str) -> tuple[float, float] | None:
    """`--crop-scale`: MIN,MAX area shares, or "native" (None: chosen per photo)."""
    if text == "native":
        return None
    low, _, high = text.partition(",")
    try:
        scale = (float(low), float(high))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected MIN,MAX (e.g. 0.02,0.12) or native, got {text!r}"
        ) from None
    if not 0 < scale[0] <= scale[1] <= 1:
        raise argparse.ArgumentTypeError(f"need 0 < MIN <= MAX <= 1, got {text!r}")
    return scale


def run(args: argparse.Namespace) -> int:
    from weedseg.finetune.trainer import run_finetune

    flags = set(_DEFAULTS) - {"train_format"}  # resolved at the start of the run
    values = {name: getattr(args, name) for name in flags}
    values["time"] = values["time"] or 0.0
    if args.resume:  # the saved recipe; flags given again must equal it
        from weedseg.resume_flags import resume_values

        values = resume_values(args, values | {"train_format": None}, "config.yaml")
    config = FinetuneConfig(**values)
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
