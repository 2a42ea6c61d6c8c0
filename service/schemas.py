"""Response bodies as pydantic models, so the OpenAPI page documents every answer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    error: str = Field(description="Short machine-readable code, e.g. body_too_large")
    detail: str = Field(description="What went wrong, for people")


class ClassOut(BaseModel):
    id: int
    name: str
    color: tuple[int, int, int]


class CocoRle(BaseModel):
    """COCO run-length encoding of one class's binary mask (pycocotools `frPyObjects` input)."""

    size: tuple[int, int] = Field(description="[height, width]")
    counts: str = Field(description="Compressed COCO RLE string (column-major)")


class WeedInstance(BaseModel):
    """One connected weed region: where to aim."""

    id: int
    centroid: tuple[float, float] = Field(description="[x, y] in pixels")
    bbox: tuple[int, int, int, int] = Field(description="[x, y, width, height] in pixels")
    area_px: int
    area_cm2: float | None = Field(None, description="With the request's gsd (cm per pixel)")
    polygon: list[tuple[int, int]] | None = Field(None, description="Outer contour [[x, y], ...]")


class SegmentResponse(BaseModel):
    """format=json: the class map and what a sprayer needs from it."""

    model: str = Field(description="Model version that produced the answer")
    width: int
    height: int
    classes: list[ClassOut]
    fractions: dict[str, float] = Field(description="Share of the image's pixels per class")
    mask_encoding: Literal["png", "rle", "none"]
    mask_png: str | None = Field(
        None, description="mask=png: base64 PNG, one byte per pixel = class id"
    )
    mask_rle: dict[str, CocoRle] | None = Field(
        None, description="mask=rle: one COCO RLE per class name"
    )
    weed_count: int
    weeds: list[WeedInstance]
    timings_ms: dict[str, float]


class Lane(BaseModel):
    index: int
    x_start: int = Field(description="First pixel column of the lane")
    x_end: int = Field(description="One past the last pixel column")
    weed_fraction: float = Field(
        description="Share of the lane's actuation-band pixels that are weed"
    )
    spray: bool


class LanesResponse(BaseModel):
    """Boom-sprayer answer: spray on/off per vertical lane of the frame."""

    model: str
    width: int
    height: int
    band: tuple[int, int] = Field(description="Rows [start, end) of the actuation band")
    threshold: float
    lanes: list[Lane]
    timings_ms: dict[str, float]


class ModelOut(BaseModel):
    """GET /v1/model: the served model and its bundle manifest."""

    model_config = ConfigDict(protected_namespaces=())

    version: str
    bundle: str | None = Field(description="Bundle folder on the server (only shown with a key)")
    loaded_at: float = Field(description="Unix time the model was loaded")
    manifest: dict[str, Any]


class Health(BaseModel):
    status: Literal["ok", "ready"]
    model: str | None = None


class ReloadRequest(BaseModel):
    bundle: str | None = Field(
        None,
        description="Bundle folder, relative to the server's reload root (default: the "
        "configured bundle path, e.g. a `current` symlink, resolved again now)",
    )


class ReloadResponse(BaseModel):
    previous: str | None
    current: str
    load_ms: float
