"""Class definitions shared by datasets, models, bundles and outputs."""

from __future__ import annotations

from dataclasses import dataclass

IGNORE_INDEX = 255  # mask value for pixels excluded from training and metrics


@dataclass(frozen=True)
class ClassInfo:
    """One segmentation class: its name and its display colour (RGB)."""

    name: str
    color: tuple[int, int, int]

    def to_dict(self) -> dict:
        return {"name": self.name, "color": list(self.color)}

    @classmethod
    def from_dict(cls, d: dict) -> ClassInfo:
        return cls(name=str(d["name"]), color=tuple(int(c) for c in d["color"]))


DEFAULT_CLASSES: tuple[ClassInfo, ...] = (
    ClassInfo("soil", (0, 0, 0)),
    ClassInfo("crop", (0, 255, 0)),
    ClassInfo("weed", (255, 0, 0)),
)
