"""The one config object of `weedseg suggest-labels`."""

from __future__ import annotations

from dataclasses import dataclass, field

from weedseg.config_flags import flag
from weedseg.errors import WeedsegError


@dataclass
class SuggestConfig:
    """Everything that decides which images are suggested (flags declared on the fields)."""

    # folder of unlabeled photos (searched recursively)
    images: str = field(metadata=flag("--images", help="folder of unlabeled photos"))
    # bundle (torch-free), segmentation run/checkpoint, or a pretraining run
    model: str = field(
        metadata=flag(
            "--model", help="bundle (no torch needed), segmentation run or pretraining run"
        )
    )
    # the list: one path per line; <out>.csv and <out>.png beside it
    out: str = field(
        metadata=flag("--out", help="list file (one path per line); .csv and .png go beside it")
    )
    k: int = field(default=20, metadata=flag("--k", help="how many photos to suggest (20)"))
    # pretraining run: adds SMS reconstruction difficulty
    pretrain: str = field(
        default="", metadata=flag("--pretrain", help="pretraining run: add SMS difficulty")
    )
    # weight of the entropy rank
    uncertainty_weight: float = field(default=1.0, metadata=flag("--uncertainty-weight"))
    # weight of the reconstruction-difficulty rank
    difficulty_weight: float = field(default=0.5, metadata=flag("--difficulty-weight"))
    # greedy k-center on image embeddings (no near-duplicates)
    diversity: bool = field(
        default=True,
        metadata=flag("--no-diversity", action="store_false", help="plain top-k by score"),
    )
    # images are scored at this long side (multiple of 32 after rounding)
    max_side: int = field(
        default=512, metadata=flag("--max-side", help="score images at this size")
    )
    # random masks per image for the difficulty score
    masks: int = field(
        default=3, metadata=flag("--masks", help="random masks per difficulty score")
    )
    seed: int = field(default=0, metadata=flag("--seed"))
    # torch device for runs (bundles run on ONNX Runtime)
    device: str = field(default="auto", metadata=flag("--device", choices=["auto", "cpu", "cuda"]))

    def __post_init__(self) -> None:
        if self.k < 1:
            raise WeedsegError("--k must be at least 1")
        if self.max_side < 32:
            raise WeedsegError("--max-side must be at least 32")
        if self.uncertainty_weight < 0 or self.difficulty_weight < 0:
            raise WeedsegError("score weights must be 0 or more")
