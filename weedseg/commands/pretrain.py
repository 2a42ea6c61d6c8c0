"""`weedseg pretrain`: masked-image pretraining on a folder of unlabeled photos."""

from __future__ import annotations

import argparse
from pathlib import Path

from weedseg.commands.finetune import SPEED_FIELDS, add_speed_arguments, add_time_argument
from weedseg.defaults import DEFAULT_ARCH

HELP = "Pretrain a segmenter on unlabeled images by masked reconstruction (selective masking)."

# on/off knobs: --sparse / --no-sparse etc.
_BOOLEAN_KNOBS = {
    "ramp": "easy-to-hard: the selected share grows from 0 (off)",
    "norm_target": "masked loss against per-patch normalised targets (off)",
    "sparse": "SparK-style masked convolution in the encoder (off)",
    "color_jitter": "colour jitter on the crops (on)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # every default is None: unset flags keep the --config file's value or the paper's default
    parser.add_argument("--images", help="folder of images (searched recursively)")
    parser.add_argument("--out", required=True, help="run folder to create (or resume)")
    parser.add_argument("--config", type=Path, help="YAML file of config fields (flags win)")
    parser.add_argument(
        "--arch",
        help=f"model preset or arch:encoder (default: the --init's, else {DEFAULT_ARCH})",
    )
    parser.add_argument("--masking", choices=["random", "selective"])
    parser.add_argument("--schedule", choices=["paper", "online"])
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="optimizer steps in total")
    budget.add_argument("--epochs", type=float, help="passes over the images (per partition)")
    add_time_argument(budget)
    parser.add_argument("--batch", type=int, help="crops per step per process (default 8)")
    parser.add_argument("--size", type=int, help="crop side in pixels, multiple of 32 (256)")
    parser.add_argument("--mask-ratio", type=float, help="share of patches masked (0.5)")
    parser.add_argument("--patch", type=int, help="mask unit in pixels (12; 32 = encoder stride)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"])
    add_speed_arguments(parser, dict.fromkeys(SPEED_FIELDS))
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--init", help="start from this weedseg checkpoint or run folder")
    parser.add_argument("--seed", type=int)
    knobs = parser.add_argument_group(
        "experiment knobs", "more fields (score_size, crop_scale, warmup, ...) via --config"
    )
    knobs.add_argument("--loss", choices=["paper", "masked"], help="paper: L1 + (1 - MS-SSIM)")
    knobs.add_argument("--selected-share", type=float, help="share of masked patches by difficulty")
    knobs.add_argument("--partitions", type=int, help="paper schedule partitions (10)")
    knobs.add_argument("--online-refresh", type=int, help="0: score each batch; N: pool every N")
    knobs.add_argument("--score-masks", type=int, help="random masks per difficulty map (5)")
    knobs.add_argument("--lr", type=float)
    knobs.add_argument("--workers", type=int, help="data loading processes (2)")
    knobs.add_argument("--log-every", type=int)
    knobs.add_argument("--image-every", type=int, help="write a reconstruction strip every N")
    knobs.add_argument("--checkpoint-every", type=int)
    for name, text in _BOOLEAN_KNOBS.items():
        flag = name.replace("_", "-")
        knobs.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction, help=text)


def build_config(args: argparse.Namespace):
    """args (+ --config file, or the run's saved config on --resume) -> PretrainConfig."""
    import yaml

    from weedseg.errors import WeedsegError
    from weedseg.pretrain import PretrainConfig
    from weedseg.resume_flags import WHERE_IT_RUNS, merge_resume_flags

    values: dict = {}
    if args.resume:
        saved = Path(args.out) / "config.yaml"
        if not saved.is_file():
            raise WeedsegError(f"{args.out}: nothing to resume (no config.yaml)")
        # a resumed run keeps its recipe (flags equal to it pass); only where it runs may change
        fields = set(PretrainConfig.__dataclass_fields__) - {"resume", "out"}
        given = {}
        if args.config:  # the same --config file as the first run passes too
            given = yaml.safe_load(args.config.read_text(encoding="utf-8")) or {}
        given = {k: v for k, v in given.items() if k in fields}
        given |= {k: getattr(args, k) for k in fields if getattr(args, k, None) is not None}
        recipe = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
        values = merge_resume_flags(recipe, given, WHERE_IT_RUNS, args.out)
        overrides = {}
    else:
        if args.config:
            values = yaml.safe_load(args.config.read_text(encoding="utf-8")) or {}
        fields = set(PretrainConfig.__dataclass_fields__) - {"resume"}
        overrides = {k: v for k, v in vars(args).items() if k in fields}
    values |= {k: v for k, v in overrides.items() if v is not None}
    values |= {"out": args.out, "resume": bool(args.resume)}
    if not values.get("images"):
        raise WeedsegError("--images is required")
    return PretrainConfig.from_dict(values)


def run(args: argparse.Namespace) -> int:
    import os

    import yaml

    from weedseg.pretrain import pretrain
    from weedseg.run_dir import to_plain

    cfg = build_config(args)
    if os.environ.get("RANK", "0") == "0":
        print(yaml.safe_dump(to_plain(cfg), sort_keys=False).rstrip())
    pretrain(cfg)
    return 0
