"""Model bundles: a folder with `model.onnx` (+ optional INT8 model / TensorRT engines) and a
`weedseg.json` manifest that says everything a runtime needs; torch-free.

Written by `weedseg export`, read by `weedseg.infer`, the service and the model registry.
Loading verifies the format version and the sha256 of every file the manifest lists.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from weedseg.atomic import write_atomic
from weedseg.classes import ClassInfo
from weedseg.errors import WeedsegError

BUNDLE_FORMAT_VERSION = 1
MANIFEST_FILE = "weedseg.json"
MAX_INPUT_SCALE = 4.0  # photos are at most upsampled 4x before the model
# how tiles become one class map: blended probabilities (no seams) or each pixel from one window
TileMerge = Literal["blend", "stitch"]
TILE_MERGES: tuple[str, ...] = get_args(TileMerge)


def check_input_scale(value: float, name: str = "--input-scale") -> None:
    """Refuse an input scale outside (0, MAX_INPUT_SCALE] with a message naming `name`."""
    if not 0 < value <= MAX_INPUT_SCALE:
        raise WeedsegError(f"{name} must be in (0, {MAX_INPUT_SCALE}], got {value}")


class BundleError(WeedsegError, ValueError):
    """A bundle that is missing, incomplete, modified or of an unsupported format."""


class ClassEntry(BaseModel):
    name: str
    color: tuple[int, int, int]


class InputSpec(BaseModel):
    """What the ONNX model's input accepts."""

    name: str = "images"
    layout: str = "NCHW"  # NCHW float32 normalised, or NHWC uint8 with normalisation inside
    dtype: str = "float32"
    height: int = 512  # export size (the static size, or the optimisation profile's opt size)
    width: int = 512
    size_multiple: int = 32
    dynamic: bool = False  # dynamic batch and H/W (multiples of size_multiple)
    min_size: int = 32
    max_size: int = 2048
    max_batch: int = 8


class TileSpec(BaseModel):
    size: int = 512
    overlap: int = 64
    merge: TileMerge = "blend"  # "stitch": faster, with straight cuts along the tile cores


class Manifest(BaseModel):
    """The `weedseg.json` of a bundle."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    format_version: int = BUNDLE_FORMAT_VERSION
    model_name: str
    arch: dict[str, Any] = Field(default_factory=dict)
    classes: list[ClassEntry]
    mean: tuple[float, float, float]  # on 0..1 RGB
    std: tuple[float, float, float]
    input: InputSpec = Field(default_factory=InputSpec)
    outputs: list[str] = Field(default_factory=lambda: ["labels"])
    tile: TileSpec = Field(default_factory=TileSpec)
    # photos are resized by this factor before the model (the scale it was trained at); class
    # maps and probabilities come back at the photo's own size
    input_scale: float = Field(default=1.0, gt=0.0, le=MAX_INPUT_SCALE)
    # one class per connected plant region by default (weedseg.infer.plant_vote); callers can
    # ask either way per image
    plant_vote: bool = False
    opset: int = 17
    producer: dict[str, str] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict)  # relative path -> sha256
    provenance: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    verification: dict[str, Any] = Field(default_factory=dict)
    int8: dict[str, Any] | None = None
    tensorrt: list[dict[str, Any]] = Field(default_factory=list)

    def class_infos(self) -> tuple[ClassInfo, ...]:
        return tuple(ClassInfo(c.name, tuple(c.color)) for c in self.classes)


@dataclass(frozen=True)
class Bundle:
    """A verified bundle on disk."""

    root: Path
    manifest: Manifest

    def path(self, name: str) -> Path:
        return self.root / name

    @property
    def onnx_path(self) -> Path:
        return self.root / "model.onnx"

    @property
    def int8_path(self) -> Path | None:
        path = self.root / "model.int8.onnx"
        return path if "model.int8.onnx" in self.manifest.files else None


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(root: str | Path, manifest: Manifest, files: list[str]) -> Manifest:
    """Hash `files` (relative to root) into the manifest and write `weedseg.json` atomically."""
    root = Path(root)
    manifest = manifest.model_copy(update={"files": {f: sha256_file(root / f) for f in files}})
    write_atomic(root / MANIFEST_FILE, manifest.model_dump_json(indent=2))
    return manifest


def read_manifest(root: str | Path) -> Manifest:
    """Parse `weedseg.json` without verifying files (use `load_bundle` before running a model)."""
    path = Path(root) / MANIFEST_FILE
    if not path.is_file():
        raise BundleError(f"{root} is not a weedseg bundle: {MANIFEST_FILE} is missing")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: unreadable manifest ({exc})") from exc
    version = raw.get("format_version")
    if version != BUNDLE_FORMAT_VERSION:
        raise BundleError(
            f"{path}: bundle format version {version!r} is not supported "
            f"(this weedseg reads version {BUNDLE_FORMAT_VERSION}); re-export the model"
        )
    try:
        return Manifest.model_validate(raw)
    except ValueError as exc:
        raise BundleError(f"{path}: invalid manifest: {exc}") from exc


def load_bundle(root: str | Path) -> Bundle:
    """Read and verify a bundle: every listed file present with its recorded sha256."""
    root = Path(root)
    manifest = read_manifest(root)
    if "model.onnx" not in manifest.files:
        raise BundleError(f"{root}: manifest lists no model.onnx")
    for entry in manifest.tensorrt:
        engine = entry.get("file")
        if engine not in manifest.files:
            raise BundleError(
                f"{root}: TensorRT engine {engine!r} has no sha256 in the manifest's files, so it "
                "cannot be verified; rebuild it with weedseg export --tensorrt or "
                "deploy/jetson/build_engine.sh, which record it"
            )
    for name, expected in manifest.files.items():
        path = (root / name).resolve()
        if root.resolve() not in path.parents:
            raise BundleError(f"{root}: manifest file entry {name!r} points outside the bundle")
        if not path.is_file():
            raise BundleError(f"{root}: {name} is missing (incomplete bundle)")
        actual = sha256_file(path)
        if actual != expected:
            raise BundleError(
                f"{root}: {name} fails its checksum (expected sha256 {expected[:12]}..., "
                f"got {actual[:12]}...): the file was modified or damaged; re-export the bundle"
            )
    return Bundle(root=root, manifest=manifest)
