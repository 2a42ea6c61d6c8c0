"""Pair image files with mask files by name templates such as `{stem}_image.png`."""

from __future__ import annotations

import re
from pathlib import Path

from weedseg.data.convert.writer import raise_if_problems
from weedseg.data.format import IMAGE_SUFFIXES
from weedseg.errors import WeedsegError

DEFAULT_TEMPLATE = "{stem}.*"


def template_regex(template: str) -> re.Pattern[str]:
    """`{stem}_mask.png` -> a regex whose group `stem` captures the sample name; `*` = anything."""
    if template.count("{stem}") != 1:
        raise WeedsegError(f"name template {template!r} must contain {{stem}} exactly once")
    before, after = template.split("{stem}")
    pattern = "".join(".*" if ch == "*" else re.escape(ch) for ch in before)
    pattern += "(?P<stem>.+)"
    pattern += "".join(".*" if ch == "*" else re.escape(ch) for ch in after)
    return re.compile(pattern + r"\Z")


def files_by_stem(folder: Path, template: str) -> dict[str, Path]:
    """Image files directly in `folder` whose name matches `template`, keyed by stem."""
    if not folder.is_dir():
        raise WeedsegError(f"{folder}: folder not found")
    regex = template_regex(template)
    found: dict[str, Path] = {}
    duplicates = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        match = regex.match(path.name)
        if not match:
            continue
        stem = match["stem"]
        if stem in found:
            duplicates.append(f"{found[stem].name} / {path.name}")
        found[stem] = path
    if duplicates:
        raise WeedsegError(f"{folder}: several files share a sample name: {', '.join(duplicates)}")
    return found


def pair_files(
    images_dir: Path,
    masks_dir: Path,
    image_template: str = DEFAULT_TEMPLATE,
    mask_template: str = DEFAULT_TEMPLATE,
) -> list[tuple[str, Path, Path]]:
    """(stem, image, mask) for every sample; an image or mask without its partner is an error."""
    images = files_by_stem(images_dir, image_template)
    masks = files_by_stem(masks_dir, mask_template)
    problems = [
        f"{images[s]}: no mask matching {mask_template!r}" for s in images if s not in masks
    ]
    problems += [
        f"{masks[s]}: no image matching {image_template!r}" for s in masks if s not in images
    ]
    if problems:
        raise_if_problems(problems, "unpaired files")
    if not images:
        raise WeedsegError(f"{images_dir}: no images matching {image_template!r}")
    return [(stem, images[stem], masks[stem]) for stem in sorted(images)]
