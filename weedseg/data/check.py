"""`weedseg data check`: every problem in a canonical dataset, and class pixel shares per split."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from weedseg.classes import IGNORE_INDEX
from weedseg.data.convert.writer import conversion_workers
from weedseg.data.format import DatasetInfo, find_images
from weedseg.errors import WeedsegError
from weedseg.imageio import read_image, read_mask

PNG_END = b"IEND\xaeB`\x82"
JPEG_END = b"\xff\xd9"


@dataclass
class CheckReport:
    """Problems found (one line each, naming the file) and class pixel counts per split."""

    info: DatasetInfo
    problems: list[str] = field(default_factory=list)
    pixel_counts: dict[str, np.ndarray] = field(default_factory=dict)  # split -> [256] counts

    @property
    def ok(self) -> bool:
        return not self.problems

    def frequency_table(self) -> str:
        """Class pixel shares per split, as a small aligned table."""
        names = [*self.info.class_names, "ignore"]
        lines = [f"{'split':<8}{'images':>7}" + "".join(f"{n:>9}" for n in names)]
        for split, counts in self.pixel_counts.items():
            picked = np.append(counts[: len(self.info.classes)], counts[IGNORE_INDEX])
            shares = picked / max(1, int(counts.sum())) * 100
            size = len(self.info.splits.get(split, []))
            lines.append(f"{split:<8}{size:>7}" + "".join(f"{s:>8.2f}%" for s in shares))
        return "\n".join(lines)


def check_dataset(root: str | Path) -> CheckReport:
    """Check pairs, sizes, mask values, file integrity and splits of the dataset at `root`."""
    root = Path(root)
    try:
        info = DatasetInfo.load(root)
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise WeedsegError(f"{root / 'dataset.yaml'}: malformed ({exc})") from exc
    report = CheckReport(info)
    report.problems += _split_problems(info)
    report.problems += _orphan_problems(info)
    with ThreadPoolExecutor(conversion_workers()) as pool:
        results = dict(
            zip(info.images, pool.map(lambda s: _check_pair(info, s), info.images), strict=True)
        )
    for problems, _ in results.values():
        report.problems += problems
    for split, stems in info.splits.items():
        counts = np.zeros(256, dtype=np.int64)
        for stem in stems:
            if stem in results and results[stem][1] is not None:
                counts += results[stem][1]
        report.pixel_counts[split] = counts
    return report


def _check_pair(info: DatasetInfo, stem: str) -> tuple[list[str], np.ndarray | None]:
    """Problems of one sample, and its mask's value counts when the pair is usable."""
    image_path, mask_path = info.image_path(stem), info.mask_path(stem)
    problems: list[str] = []
    image = _decode(image_path, f"image of {stem}", read_image, problems)
    mask = _decode(mask_path, f"mask of {stem}", read_mask, problems)
    if image is None or mask is None:
        return problems, None
    if image.shape[:2] != mask.shape:
        problems.append(
            f"{mask_path}: size mismatch: mask is {mask.shape[1]}x{mask.shape[0]}, "
            f"image {image_path.name} is {image.shape[1]}x{image.shape[0]}"
        )
        return problems, None
    counts = np.bincount(mask.ravel(), minlength=256)
    valid = set(range(len(info.classes))) | {IGNORE_INDEX}
    unknown = [v for v in np.flatnonzero(counts).tolist() if v not in valid]
    if unknown:
        listed = ", ".join(f"{v} x{int(counts[v])}" for v in unknown[:8])
        problems.append(
            f"{mask_path}: unknown mask values ({listed}); valid: 0..{len(info.classes) - 1}, 255"
        )
    return problems, counts


def _decode(
    path: Path, what: str, reader: Callable[[Path], np.ndarray], problems: list[str]
) -> np.ndarray | None:
    """The decoded file, or None with the reason appended to `problems`."""
    if not path.is_file():
        problems.append(f"{path}: missing ({what})")
        return None
    broken = _file_problem(path, is_mask=reader is read_mask)
    if broken:
        problems.append(broken)
        return None
    try:
        return reader(path)
    except WeedsegError as exc:
        problems.append(str(exc))
        return None


def _file_problem(path: Path, is_mask: bool) -> str | None:
    """A truncated PNG/JPEG (decoders may fill it in silently), or a mask that is not grey 8-bit."""
    with path.open("rb") as f:
        head = f.read(26)
        f.seek(max(0, path.stat().st_size - 64))
        tail = f.read().rstrip(b"\x00")
    is_png = head.startswith(b"\x89PNG")
    if is_png and (len(head) < 26 or not tail.endswith(PNG_END)):
        return f"{path}: truncated PNG (no IEND chunk)"
    if head.startswith(b"\xff\xd8") and JPEG_END not in tail[-16:]:
        return f"{path}: truncated JPEG (no end-of-image marker)"
    if not is_mask:
        return None
    if not is_png:
        return f"{path}: masks must be PNG files"
    bit_depth, color_type = head[24], head[25]  # from the IHDR chunk; colour type 0 = grey
    if (bit_depth, color_type) != (8, 0):
        return (
            f"{path}: mask must be an 8-bit single-channel PNG "
            f"(has bit depth {bit_depth}, colour type {color_type})"
        )
    return None


def _split_problems(info: DatasetInfo) -> list[str]:
    meta = info.root / "dataset.yaml"
    problems = []
    if not info.splits:
        problems.append(f"{meta}: no splits")
    seen: dict[str, str] = {}
    for split, stems in info.splits.items():
        if not stems:
            problems.append(f"{meta}: split {split!r} is empty")
        for stem in stems:
            if stem not in info.images:
                problems.append(f"{meta}: split {split!r} names {stem!r}, which has no image entry")
            if stem in seen:
                problems.append(f"{meta}: {stem!r} is in both {seen[stem]!r} and {split!r}")
            seen[stem] = split
    return problems


def _orphan_problems(info: DatasetInfo) -> list[str]:
    """Files on disk that dataset.yaml does not list: images without mask, masks without image."""
    listed_images = {info.image_path(s).resolve() for s in info.images}
    listed_masks = {info.mask_path(s).resolve() for s in info.images}
    problems = [
        f"{p}: image not listed in dataset.yaml (no mask pair)"
        for p in find_images(info.root / "images")
        if p.resolve() not in listed_images
    ]
    masks_dir = info.root / "masks"
    if masks_dir.is_dir():
        problems += [
            f"{p}: mask without an image in dataset.yaml"
            for p in sorted(masks_dir.glob("*.png"))
            if p.resolve() not in listed_masks
        ]
    return problems
