"""`weedseg suggest-labels`: which unlabeled photos to label next (uncertain, hard, diverse)."""

from __future__ import annotations

import argparse

HELP = "rank unlabeled photos by how much a label would help; write the k to label next"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", required=True, help="folder of unlabeled photos")
    parser.add_argument(
        "--model",
        required=True,
        help="bundle (no torch needed), segmentation run or pretraining run",
    )
    parser.add_argument("--k", type=int, default=20, help="how many photos to suggest (20)")
    parser.add_argument(
        "--out", required=True, help="list file (one path per line); .csv and .png go beside it"
    )
    parser.add_argument("--pretrain", default="", help="pretraining run: add SMS difficulty")
    parser.add_argument("--uncertainty-weight", type=float, default=1.0)
    parser.add_argument("--difficulty-weight", type=float, default=0.5)
    parser.add_argument(
        "--no-diversity", dest="diversity", action="store_false", help="plain top-k by score"
    )
    parser.add_argument("--max-side", type=int, default=512, help="score images at this size")
    parser.add_argument("--masks", type=int, default=3, help="random masks per difficulty score")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from weedseg.suggest.config import SuggestConfig
    from weedseg.suggest.runner import suggest_labels

    names = {f.name for f in dataclasses.fields(SuggestConfig)}
    config = SuggestConfig(**{k: v for k, v in vars(args).items() if k in names})
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
