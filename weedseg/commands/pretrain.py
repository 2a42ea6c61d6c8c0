"""`weedseg pretrain`: masked-image pretraining on a folder of unlabeled photos."""

from __future__ import annotations

import argparse
from pathlib import Path

from weedseg.config_flags import add_config_flags, config_from_args

HELP = "Pretrain a segmenter on unlabeled images by masked reconstruction (selective masking)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from weedseg.pretrain.config import KNOBS, KNOBS_HELP, PretrainConfig

    parser.add_argument("--config", type=Path, help="YAML file of config fields (flags win)")
    # unset flags keep the --config file's value or the paper's default
    add_config_flags(parser, PretrainConfig, defaults=False, groups={KNOBS: KNOBS_HELP})


def build_config(args: argparse.Namespace):
    """args (+ --config file, or the run's saved config on --resume) -> PretrainConfig."""
    import yaml

    from weedseg.pretrain.config import PretrainConfig

    preset = {}
    if args.config:  # on --resume, the same --config file as the first run passes too
        preset = yaml.safe_load(args.config.read_text(encoding="utf-8")) or {}
    # a resumed run keeps its recipe (flags equal to it pass); only where it runs may change
    return config_from_args(PretrainConfig, args, preset=preset, resume_file="config.yaml")


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
