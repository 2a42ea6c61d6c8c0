"""Score the base and the new model on the same images with the same tiling.

A model is a checkpoint (PyTorch, as `weedseg evaluate`) or a bundle (ONNX Runtime, as the
service runs it); both cut images into the same windows (`weedseg.tiling`): the checkpoint
blends their probabilities like `weedseg evaluate`, the bundle stitches their class maps like
the runtime.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from weedseg.data.format import DatasetInfo
from weedseg.evaluate.metrics import ConfusionMatrix, metrics_from_matrix
from weedseg.imageio import ImageReadError, read_image, read_mask
from weedseg.infer.prediction import argmax_classes
from weedseg.tiling import TilingOptions, predict_scaled

if TYPE_CHECKING:
    from weedseg.retrain.base_model import BaseModel


@dataclass
class SplitScores:
    """One model's result on one split."""

    matrix: np.ndarray  # [K, K] rows = ground truth, columns = prediction
    per_image: dict[str, float]  # stem -> that image's mIoU (NaN when undefined)
    skipped: list[dict]

    def to_dict(self, class_names: Sequence[str]) -> dict:
        return metrics_from_matrix(self.matrix).to_dict(class_names) | {
            "confusion_matrix": self.matrix.tolist(),
            "images": len(self.per_image),
            "skipped": self.skipped,
        }

    def to_record(self) -> dict:
        """A JSON-able record that `from_record` reads back (a stage's record)."""
        return {
            "matrix": self.matrix.tolist(),
            "per_image": self.per_image,
            "skipped": self.skipped,
        }

    @classmethod
    def from_record(cls, record: dict) -> SplitScores:
        return cls(np.asarray(record["matrix"], np.int64), record["per_image"], record["skipped"])

    @classmethod
    def pooled(cls, parts: Sequence[SplitScores]) -> SplitScores:
        """The scores of disjoint image sets (e.g. cross-validation folds) as one split: their
        confusion matrices summed, so every pixel weighs the same (not a mean of mIoUs)."""
        matrix = np.sum([p.matrix for p in parts], axis=0)  # [K, K]
        per_image = {stem: miou for p in parts for stem, miou in p.per_image.items()}
        return cls(matrix, per_image, [s for p in parts for s in p.skipped])


class Segmenter:
    """Predicts a class map for an HxWx3 uint8 image, from a checkpoint or a bundle."""

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], num_classes: int) -> None:
        self.predict = predict  # image [H, W, 3] uint8 -> class map [H, W] uint8
        self.num_classes = num_classes

    @classmethod
    def from_checkpoint(cls, stem: Path, tile: int, overlap: int, device: str) -> Segmenter:
        from weedseg.checkpoint import load_checkpoint
        from weedseg.distributed import resolve_device
        from weedseg.evaluate.evaluator import torch_run_batch

        loaded = load_checkpoint(stem)
        torch_device = resolve_device(device)
        model = loaded.model.to(torch_device).eval()
        run_batch = torch_run_batch(model, loaded.meta.mean, loaded.meta.std, torch_device)
        num_classes = len(loaded.meta.classes)
        tiling = TilingOptions(tile, overlap, input_scale=loaded.meta.input_scale)

        def predict(image: np.ndarray) -> np.ndarray:
            probs = predict_scaled(image, run_batch, num_classes, tiling)
            return argmax_classes(probs)  # [H, W] from [K, H, W]

        return cls(predict, num_classes)

    @classmethod
    def from_bundle(
        cls, bundle: Path, tile: int | None = None, overlap: int | None = None
    ) -> Segmenter:
        """The bundle as the service runs it (ONNX Runtime on the CPU; a static bundle keeps
        its own tile; None: the manifest's tile)."""
        from weedseg.bundle import read_manifest
        from weedseg.infer import Predictor

        dynamic = read_manifest(bundle).input.dynamic
        window = {"tile": tile, "overlap": overlap} if dynamic else {}
        predictor = Predictor.from_bundle(bundle, providers="cpu", **window)
        return cls(lambda image: predictor.predict(image).labels, predictor.num_classes)

    @classmethod
    def from_base(cls, base: BaseModel, tile: int, overlap: int, device: str) -> Segmenter:
        """The base model as it is served: its bundle when it has one, else its checkpoint."""
        if base.bundle:
            return cls.from_bundle(base.bundle, tile, overlap)
        return cls.from_checkpoint(base.checkpoint, tile, overlap, device)

    def score(self, info: DatasetInfo, stems: Sequence[str]) -> SplitScores:
        """One confusion matrix over `stems`; unreadable pairs are skipped and listed."""
        confusion = ConfusionMatrix(self.num_classes)
        per_image: dict[str, float] = {}
        skipped: list[dict] = []
        for stem in stems:
            try:
                image = read_image(info.image_path(stem))
                target = read_mask(info.mask_path(stem))
            except (ImageReadError, KeyError) as exc:
                skipped.append({"stem": stem, "reason": str(exc)})
                continue
            if image.shape[:2] != target.shape:
                skipped.append({"stem": stem, "reason": "image and mask sizes differ"})
                continue
            own = confusion.update(target, self.predict(image))
            per_image[stem] = metrics_from_matrix(own).miou
        return SplitScores(confusion.matrix.copy(), per_image, skipped)
