"""Label names from a farm's tool -> the base model's classes (case-insensitive, with renames)."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from weedseg.classes import IGNORE_INDEX, ClassInfo
from weedseg.data.convert.masks import IGNORE_NAME, Color
from weedseg.errors import WeedsegError

# what labeling tools call "no class": these pixels are soil unless renamed
BACKGROUND_NAMES = ("background", "_background_", "bg", "__background__")


def parse_rename(items: Iterable[str]) -> dict[str, str]:
    """`["Carrot=crop", "grass=weed,stone=ignore"]` -> {label name: class name}."""
    rename: dict[str, str] = {}
    for item in (part.strip() for text in items for part in text.split(",")):
        if not item:
            continue
        name, sep, target = item.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise WeedsegError(f"bad class map entry {item!r}: expected LABEL=CLASS")
        rename[name.strip()] = target.strip()
    return rename


@dataclass
class ClassResolver:
    """Maps label names onto `classes` (the base model's list, in its order).

    A name matches a class case-insensitively; `rename` maps other names (also to `ignore`);
    a background name maps to the first class (soil). Anything else is collected, so one error
    can list every unknown name at once.
    """

    classes: tuple[ClassInfo, ...]
    rename: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        known = {c.name.lower() for c in self.classes} | {IGNORE_NAME}
        bad = sorted(t for t in self.rename.values() if t.lower() not in known)
        if bad:
            raise WeedsegError(
                f"class map targets that are not classes: {', '.join(bad)} "
                f"(classes: {', '.join(self.names)}, {IGNORE_NAME})"
            )

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def target(self, name: str) -> str | None:
        """The class name (or `ignore`) for a label name; None when unknown."""
        lowered = {k.lower(): v for k, v in self.rename.items()}
        wanted = self.rename.get(name, lowered.get(name.strip().lower(), name.strip()))
        for class_name in [*self.names, IGNORE_NAME]:
            if class_name.lower() == wanted.lower():
                return class_name
        if wanted.lower() in BACKGROUND_NAMES:
            return self.names[0]
        return None

    def index(self, name: str) -> int:
        """The class index (IGNORE_INDEX for `ignore`) of a known label name."""
        target = self.target(name)
        if target is None:
            raise self.unknown_error([name], "labels")
        return IGNORE_INDEX if target == IGNORE_NAME else self.names.index(target)

    def check(self, names: Iterable[str], where: str) -> dict[str, str]:
        """{label name: class name} for every name, or one error listing the unknown ones."""
        names = list(dict.fromkeys(names))
        unknown = [n for n in names if self.target(n) is None]
        if unknown:
            raise self.unknown_error(unknown, where)
        return {n: self.target(n) for n in names}  # type: ignore[misc]

    def unknown_error(self, unknown: list[str], where: str) -> WeedsegError:
        return WeedsegError(
            f"{where}: unknown class name(s) {', '.join(repr(n) for n in unknown)}; the base model "
            f"knows {', '.join(self.names)}. Map them with --map NAME=CLASS "
            f"(or NAME={IGNORE_NAME} to leave those pixels out)"
        )


def read_cvat_labelmap(path: Path) -> dict[str, Color]:
    """CVAT/Pascal-VOC `labelmap.txt` (`name:r,g,b:parts:actions` lines) -> {name: colour}."""
    colors: dict[str, Color] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, rest = line.partition(":")
        parts = rest.split(":")[0].split(",")
        if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
            raise WeedsegError(f"{path}:{number}: expected NAME:R,G,B:..., got {line!r}")
        colors[name.strip()] = tuple(int(p) for p in parts)  # type: ignore[assignment]
    if not colors:
        raise WeedsegError(f"{path}: no labels listed")
    return colors


def read_roboflow_classes(path: Path) -> dict[int, str]:
    """Roboflow `_classes.csv` (`Pixel Value, Class` rows) -> {mask value: name}."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    values: dict[int, str] = {}
    for number, row in enumerate(rows, 1):
        if len(row) < 2 or not row[0].strip().isdigit():
            if number == 1:
                continue  # the header
            raise WeedsegError(f"{path}:{number}: expected VALUE,NAME, got {row!r}")
        values[int(row[0])] = row[1].strip()
    if not values:
        raise WeedsegError(f"{path}: no classes listed")
    return values
