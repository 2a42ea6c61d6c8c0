"""One knob set for the synthetic field generator, including the domain-shift styles."""

from __future__ import annotations

from dataclasses import asdict, dataclass

SOIL_COLORS: dict[str, tuple[float, float, float]] = {
    "loam": (0.46, 0.34, 0.25),  # ordinary brown field soil
    "dark": (0.24, 0.18, 0.14),  # wet or humus-rich soil
    "light": (0.68, 0.58, 0.46),  # dry sandy soil
    "red": (0.56, 0.31, 0.21),  # laterite
}
LIGHTING = ("sun", "overcast", "mixed")


@dataclass(frozen=True)
class SynthConfig:
    """What `weedseg data synth` generates; the same config and seed give byte-identical files.

    `soil` and `lighting` change the look of the field (a domain shift); densities change how
    many plants there are (1.0 = the default field).
    """

    n: int = 24
    size: int = 256
    seed: int = 0
    soil: str = "loam"
    lighting: str = "mixed"
    crop_density: float = 1.0
    weed_density: float = 1.0
    blur: float = 0.6  # Gaussian sigma in pixels at 256 px, scaled with size
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    jpeg_quality: int = 92

    def __post_init__(self) -> None:
        if self.soil not in SOIL_COLORS:
            raise ValueError(f"soil must be one of {', '.join(SOIL_COLORS)}, got {self.soil!r}")
        if self.lighting not in LIGHTING:
            raise ValueError(
                f"lighting must be one of {', '.join(LIGHTING)}, got {self.lighting!r}"
            )
        if self.n < 1 or self.size < 32:
            raise ValueError("need n >= 1 and size >= 32")
        if not 0 <= self.val_fraction + self.test_fraction < 1:
            raise ValueError("val_fraction + test_fraction must be in [0, 1)")

    def to_dict(self) -> dict:
        return asdict(self)
