"""What `weedseg predict` reads: a file, a folder (recursive), a glob or a text file of paths.

Each input gets a relative output name that mirrors its place in the input tree and can never
leave the output folder (absolute paths and `..` in a list file are folded inside it).
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

from weedseg.data.format import IMAGE_SUFFIXES, find_images
from weedseg.errors import WeedsegError


@dataclass(frozen=True)
class SourceItem:
    """One input image and where its outputs go, relative to OUT (`<rel>.mask.png` etc.)."""

    path: Path
    rel: str  # posix path of the input relative to the source root, without the suffix


def safe_relative(path: str | Path, base: Path) -> PurePosixPath:
    """`path` relative to `base` when inside it, else folded: no root, no `..`, no empty parts.

    A path with nothing left (`/`) becomes `_`; reading it fails later and is reported.
    """
    path = Path(path)
    try:
        parts = path.resolve().relative_to(base.resolve()).parts
    except ValueError:
        parts = path.parts
    cleaned = [p for p in parts if p not in ("", ".", path.anchor, "/", "\\")]
    cleaned = ["__" if p == ".." else p.strip() or "_" for p in cleaned]
    return PurePosixPath(*cleaned) if cleaned else PurePosixPath("_")


def _without_suffix(rel: PurePosixPath) -> str:
    """`a/b/img.jpg` -> `a/b/img`; names that would become empty, `.` or `..` get a `_`."""
    stem = rel.name[: -len(rel.suffix)] if rel.suffix else rel.name
    if stem.strip(".") == "":
        stem = f"_{rel.name}"
    return (rel.parent / stem).as_posix()


def inside(root: Path, relative: str) -> Path:
    """root / relative, refused when it resolves outside root (links included)."""
    root = root.resolve()
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        raise WeedsegError(f"output path {relative!r} would escape the output folder {root}")
    return target


def _read_list(list_file: Path) -> list[Path]:
    """Paths in a text file, one a line; blank lines and # comments skipped."""
    paths = []
    for line in list_file.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            path = Path(line)
            paths.append(path if path.is_absolute() else list_file.parent / path)
    return paths


def _glob_base(pattern: str) -> Path:
    """The folder part of a glob before its first wildcard."""
    parts = []
    for part in Path(pattern).parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def _matches(rel: str, name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch(rel, p) or fnmatch(name, p) for p in patterns)


def expand_sources(
    source: str | Path, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> list[SourceItem]:
    """The images SOURCE names, filtered by include/exclude globs (on relative path or name)."""
    source_path = Path(source)
    if source_path.is_dir():
        base, paths = source_path, find_images(source_path)
    elif source_path.is_file() and source_path.suffix.lower() in IMAGE_SUFFIXES:
        base, paths = source_path.parent, [source_path]
    elif source_path.is_file():
        base, paths = source_path.parent, _read_list(source_path)
    elif glob.has_magic(str(source)):
        base = _glob_base(str(source))
        paths = sorted(Path(p) for p in glob.glob(str(source), recursive=True) if Path(p).is_file())
    else:
        raise WeedsegError(f"{source}: no such file, folder or glob")
    items, taken = [], set()
    for path in paths:
        rel = safe_relative(path, base)
        rel_text = rel.as_posix()
        if include and not _matches(rel_text, path.name, include):
            continue
        if exclude and _matches(rel_text, path.name, exclude):
            continue
        name = _without_suffix(rel)
        if name in taken:  # img.jpg and img.png side by side: keep both, apart
            name = f"{name}_{rel.suffix.lstrip('.')}"
        while name in taken:
            name += "_"
        taken.add(name)
        items.append(SourceItem(path=path, rel=name))
    return items
