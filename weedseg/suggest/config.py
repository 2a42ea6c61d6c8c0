"""The one config object of `weedseg suggest-labels`."""

from __future__ import annotations

from dataclasses import dataclass

from weedseg.errors import WeedsegError


@dataclass
class SuggestConfig:
    """Everything that decides which images are suggested (CLI flags map one to one)."""

    images: str  # folder of unlabeled photos (searched recursively)
    model: str  # bundle (torch-free), segmentation run/checkpoint, or a pretraining run
    out: str  # the list: one path per line; <out>.csv and <out>.png beside it
    k: int = 20
    pretrain: str = ""  # pretraining run: adds SMS reconstruction difficulty
    uncertainty_weight: float = 1.0  # weight of the entropy rank
    difficulty_weight: float = 0.5  # weight of the reconstruction-difficulty rank
    diversity: bool = True  # greedy k-center on image embeddings (no near-duplicates)
    max_side: int = 512  # images are scored at this long side (multiple of 32 after rounding)
    masks: int = 3  # random masks per image for the difficulty score
    seed: int = 0
    device: str = "auto"  # torch device for runs (bundles run on ONNX Runtime)

    def __post_init__(self) -> None:
        if self.k < 1:
            raise WeedsegError("--k must be at least 1")
        if self.max_side < 32:
            raise WeedsegError("--max-side must be at least 32")
        if self.uncertainty_weight < 0 or self.difficulty_weight < 0:
            raise WeedsegError("score weights must be 0 or more")
