"""`weedseg suggest-labels`: which unlabeled photos to label next (uncertain, hard, diverse)."""

from __future__ import annotations

import argparse
import dataclasses

from weedseg.config_flags import add_config_flags, config_from_args
from weedseg.suggest.config import SuggestConfig

HELP = "rank unlabeled photos by how much a label would help; write the k to label next"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_flags(parser, SuggestConfig)


def run(args: argparse.Namespace) -> int:
    from weedseg.suggest.runner import suggest_labels

    config = config_from_args(SuggestConfig, args)
    print("suggest-labels:", ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(config).items()))
    result = suggest_labels(config)
    print(
        f"scored {result.scored} images ({len(result.skipped)} skipped) in {result.seconds:.1f} s"
    )
    for rank, path in enumerate(result.chosen[:10], 1):
        print(f"{rank:>3}. {path}")
    if len(result.chosen) > 10:
        print(f"     ... {len(result.chosen) - 10} more")
    print(f"List: {result.list_path}  Scores: {result.csv_path}  Sheet: {result.sheet_path}")
    return 0
