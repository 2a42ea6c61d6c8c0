"""Write converted samples as a canonical dataset: all or nothing, in one atomic folder swap."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weedseg.atomic import atomic_dir
from weedseg.classes import DEFAULT_CLASSES, ClassInfo
from weedseg.data.format import DatasetInfo
from weedseg.errors import WeedsegError
from weedseg.imageio import ImageReadError, encode_image

MAX_LISTED = 20  # problems listed in one error message; the rest are counted


@dataclass(frozen=True)
class Sample:
    """One source pair: its stem, its image file and a function that builds its index mask."""

    stem: str
    image: Path
    build_mask: Callable[[], np.ndarray]  # -> HxW uint8 class indices (255 = ignore)


@dataclass(frozen=True)
class ConversionResult:
    """What a converter wrote."""

    root: Path
    count: int
    splits: dict[str, int]
    seconds: float

    def summary(self) -> str:
        splits = ", ".join(f"{name} {n}" for name, n in self.splits.items())
        return (
            f"wrote {self.count} image/mask pairs to {self.root} ({splits}) in {self.seconds:.1f} s"
        )


def conversion_workers() -> int:
    """Threads for decoding/encoding (OpenCV releases the GIL)."""
    return max(1, min(4, os.cpu_count() or 1))


def raise_if_problems(problems: list[str], what: str) -> None:
    """One WeedsegError listing every problem (capped), or nothing when the list is empty."""
    if not problems:
        return
    shown = problems[:MAX_LISTED]
    more = len(problems) - len(shown)
    tail = f"\n  ... and {more} more" if more else ""
    raise WeedsegError(f"{what}: {len(problems)} problem(s)\n  " + "\n  ".join(shown) + tail)


def write_dataset(
    dst: str | Path,
    samples: list[Sample],
    splits: dict[str, list[str]],
    source: str,
    force: bool = False,
    classes: tuple[ClassInfo, ...] = DEFAULT_CLASSES,
) -> ConversionResult:
    """Copy images as they are, write index masks, save dataset.yaml; nothing appears on failure.

    Every sample is processed before failing, so the error lists all bad files at once.
    """
    start = time.perf_counter()
    dst = Path(dst)
    if dst.exists() and not force:
        raise FileExistsError(f"{dst} already exists (use --force to overwrite)")
    if not samples:
        raise WeedsegError("no image/mask pairs found to convert")
    with atomic_dir(dst, force=force) as tmp:
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()

        def convert_one(sample: Sample) -> str | None:
            try:
                mask = sample.build_mask()
                height, width = image_size(sample.image)
            except WeedsegError as exc:
                return str(exc)
            if mask.shape != (height, width):
                return (
                    f"{sample.image}: image is {width}x{height} but its mask is "
                    f"{mask.shape[1]}x{mask.shape[0]}"
                )
            shutil.copyfile(sample.image, tmp / "images" / _image_name(sample))
            (tmp / "masks" / f"{sample.stem}.png").write_bytes(encode_image(mask, ".png"))
            return None

        with ThreadPoolExecutor(conversion_workers()) as pool:
            problems = [p for p in pool.map(convert_one, samples) if p]
        raise_if_problems(problems, f"cannot convert to {dst}")
        DatasetInfo(
            root=tmp,
            classes=classes,
            splits={name: sorted(stems) for name, stems in splits.items()},
            images={s.stem: _image_name(s) for s in sorted(samples, key=lambda s: s.stem)},
            source=source,
        ).save()
    return ConversionResult(
        root=dst,
        count=len(samples),
        splits={name: len(stems) for name, stems in splits.items()},
        seconds=time.perf_counter() - start,
    )


def _image_name(sample: Sample) -> str:
    return f"{sample.stem}{sample.image.suffix.lower()}"


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) as displayed (EXIF orientation applied), read from the header only."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)
    except (OSError, UnidentifiedImageError) as exc:
        raise ImageReadError(f"{path}: not a readable image ({exc})") from exc
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)
