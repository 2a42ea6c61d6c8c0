"""The flags the training configs share (pretrain, finetune, retrain) and their value parsers.

Each is field metadata (weedseg.config_flags.flag) for a field of the same meaning in every
training config: the wall-clock budget, the crop scale, how a run computes and the photo cache.
"""

from __future__ import annotations

import argparse
from typing import Any

from weedseg.config_flags import flag
from weedseg.defaults import MEMORY_FORMATS, PRECISIONS


def duration(text: str) -> float:
    """argparse type of --time: seconds."""
    from weedseg.budget import parse_duration
    from weedseg.errors import WeedsegError

    try:
        return parse_duration(text)
    except WeedsegError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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


def time_flag(**where: Any) -> dict:
    """`--time`; `where`: flag() placement, e.g. exclusive="length" beside --steps/--epochs,
    or a command's own `help`."""
    where.setdefault(
        "help",
        "wall-clock budget (45m, 1.5h, 600s): train until it is spent, the LR schedule "
        "fitted to it, then validate and save (the total across --resume)",
    )
    return flag("--time", type=duration, **where)


CROP_SCALE = flag(
    "--crop-scale",
    type=crop_scale_range,
    help="MIN,MAX share of the photo's area per training crop, or 'native' (default: "
    "chosen per photo so plants keep 0.5-1.4x their pixel size, as inference sees them)",
)
PRECISION = flag(
    "--precision",
    choices=PRECISIONS,
    help="auto: bf16 autocast where the CPU/GPU has native bf16 and a short measurement shows "
    "it faster for this model, else fp32 (checkpoints are float32 either way)",
)
MEMORY_FORMAT = flag(
    "--memory-format",
    choices=MEMORY_FORMATS,
    help="auto: the faster of channels_last and contiguous, measured",
)
CACHE_GB = flag(
    "--cache-gb", help="size limit of the decoded-photo cache in GiB (0: decode each crop's photo)"
)
CACHE_DIR = flag("--cache-dir", help="cache folder (default RUN/cache/photos)")
DEVICE = flag("--device", choices=["auto", "cpu", "cuda"])
RESUME = flag("--resume", action="store_true", help="continue the run in --out")
