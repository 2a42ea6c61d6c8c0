"""Full-resolution evaluation of a PyTorch segmentation model over a dataset split.

Images go through `weedseg.tiling.predict_scaled` (`predict_tiled` at the model's input
scale): the same windows and blending as the ONNX runtime, optionally with the same plant vote.
Besides the confusion matrix, the split's consistency counts (mixed plant regions, disagreement
across tile-core borders, crop plants kept: `weedseg.evaluate.consistency`) are accumulated.
Fine-tuning validates with the same function (optionally at a reduced `scale` to save time on a
CPU).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from weedseg.classes import IGNORE_INDEX, ClassInfo
from weedseg.data.format import DatasetInfo
from weedseg.errors import WeedsegError
from weedseg.evaluate.config import EvaluateConfig
from weedseg.evaluate.consistency import ConsistencyCounts
from weedseg.evaluate.metrics import ConfusionMatrix
from weedseg.evaluate.report import ImageScore, WorstImage, write_report
from weedseg.imageio import ImageReadError, read_image, read_mask
from weedseg.infer.plant_vote import plant_vote as vote_plants
from weedseg.model_paths import resolve_model
from weedseg.tiling import (
    RunBatch,
    TilingOptions,
    core_borders,
    predict_scaled,
    with_tta,
)


@dataclass
class SplitResult:
    """Accumulated outcome of evaluating one split."""

    matrix: np.ndarray  # [K, K] rows = ground truth, columns = prediction
    consistency: ConsistencyCounts = field(default_factory=ConsistencyCounts)
    per_image: list[ImageScore] = field(default_factory=list)
    worst: list[WorstImage] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)


def torch_run_batch(
    model: nn.Module, mean: Sequence[float], std: Sequence[float], device: torch.device
) -> RunBatch:
    """A `predict_tiled` callback: uint8 tiles [N, h, w, 3] -> softmax probs [N, K, h, w]."""
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)

    @torch.inference_mode()
    def run_batch(tiles: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(tiles)).to(device)  # [N, h, w, 3] uint8
        x = x.permute(0, 3, 1, 2).float().div_(255.0)  # [N, 3, h, w] in 0..1
        logits = model((x - mean_t) / std_t)  # [N, K, h, w]
        return logits.float().softmax(dim=1).cpu().numpy()

    return run_batch


def rescale(image: np.ndarray, mask: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Resize image (area) and mask (nearest) by `scale`; identity at 1.0."""
    if scale == 1.0:
        return image, mask
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return (
        cv2.resize(image, size, interpolation=cv2.INTER_AREA),
        cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST),
    )


def image_core_borders(
    height: int, width: int, tiling: TilingOptions
) -> tuple[list[int], list[int]]:
    """Rows and columns of an image where the tile cores of the model's input meet."""
    scale, tile, overlap = tiling.input_scale, tiling.tile, tiling.overlap
    model_h, model_w = (max(1, round(side * scale)) for side in (height, width))
    return (
        [round(b / scale) for b in core_borders(model_h, tile, overlap)],
        [round(b / scale) for b in core_borders(model_w, tile, overlap)],
    )


def evaluate_split(
    model: nn.Module,
    info: DatasetInfo,
    stems: Sequence[str],
    *,
    mean: Sequence[float],
    std: Sequence[float],
    tiling: TilingOptions,
    scale: float = 1.0,
    plant_vote: bool = False,
    tta: str = "none",
    keep_worst: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> SplitResult:
    """Predict every image of `stems` with tiling and accumulate one confusion matrix.

    `tiling` cuts each image into windows as the runtime does (its merge is always blend
    here); `scale` shrinks images and masks alike (a cheaper, coarser evaluation), while
    `tiling.input_scale` is the model's working scale: the model sees each image resized by it
    and its probabilities are resized back, so the score is against the masks at full
    resolution, as the runtime.
    `plant_vote` scores the class map after the runtime's plant vote; `tta` ("flip") averages
    each tile's probabilities with those of its mirror images, as the runtime's `tta`.

    Unreadable images or masks are skipped and listed; the `keep_worst` images with the lowest
    per-image mIoU keep their prediction for the report overlays. The model is left in eval mode.
    """
    device = torch.device(device)
    model.eval()
    run_batch = with_tta(torch_run_batch(model, mean, std, device), tta)
    num_classes = len(info.classes)
    confusion = ConfusionMatrix(num_classes)
    result = SplitResult(matrix=confusion.matrix)
    heap: list[tuple[float, int, WorstImage]] = []  # (-mIoU, index, image): best kept on top
    iterator = stems
    if progress:
        from tqdm import tqdm

        iterator = tqdm(stems, desc="evaluate", unit="img", dynamic_ncols=True)
    for index, stem in enumerate(iterator):
        try:
            image = read_image(info.image_path(stem))
            target = read_mask(info.mask_path(stem))
        except (ImageReadError, KeyError) as exc:
            result.skipped.append({"stem": stem, "reason": str(exc)})
            continue
        if image.shape[:2] != target.shape:
            reason = f"image {image.shape[:2]} and mask {target.shape} sizes differ"
            result.skipped.append({"stem": stem, "reason": reason})
            continue
        image, target = rescale(image, target, scale)
        probs = predict_scaled(image, run_batch, num_classes, tiling)  # [K, H, W]
        pred = probs.argmax(axis=0).astype(np.uint8)  # [H, W]
        if plant_vote:
            pred = vote_plants(pred, probs)
        score = ImageScore(stem, confusion.update(target, pred))
        borders = image_core_borders(*image.shape[:2], tiling)
        result.consistency.update(target, pred, info.class_names, *borders)
        result.per_image.append(score)
        if keep_worst > 0 and not np.isnan(score.miou):
            # heap[0] holds the best of the kept images; a worse one takes its place
            item = (-score.miou, index, WorstImage(stem, score.miou, image, target, pred))
            if len(heap) < keep_worst:
                heapq.heappush(heap, item)
            elif item[0] > heap[0][0]:
                heapq.heapreplace(heap, item)
    result.matrix = confusion.matrix
    result.worst = [w for _, _, w in sorted(heap, key=lambda t: (-t[0], t[1]))]
    return result


def check_classes(model_classes: Sequence[ClassInfo], info: DatasetInfo) -> None:
    """The model must predict the dataset's classes, in the same order."""
    have = [c.name for c in model_classes]
    want = info.class_names
    if have != want:
        raise WeedsegError(f"model classes {have} do not match dataset {info.root} classes {want}")


def run_evaluate(config: EvaluateConfig) -> dict:
    """`weedseg evaluate`: load the checkpoint, evaluate the split, write the report folder."""
    from weedseg.atomic import atomic_dir
    from weedseg.checkpoint import load_checkpoint
    from weedseg.distributed import resolve_device

    info = DatasetInfo.load(config.data)
    stems = info.splits.get(config.split)
    if not stems:
        raise WeedsegError(f"{config.data}: split {config.split!r} is missing or empty")
    device = resolve_device(config.device)
    loaded = load_checkpoint(resolve_model(config.model).checkpoint(config.which))
    if loaded.task != "segmentation":
        raise WeedsegError(f"{loaded.path} is a {loaded.task} checkpoint, not a segmenter")
    classes = list(loaded.meta.classes)
    check_classes(classes, info)
    model = loaded.model.to(device)
    input_scale = config.input_scale or loaded.meta.input_scale
    started = time.perf_counter()
    result = evaluate_split(
        model,
        info,
        stems,
        mean=loaded.meta.mean,
        std=loaded.meta.std,
        tiling=TilingOptions(config.tile, config.overlap, config.batch, input_scale),
        scale=config.scale,
        plant_vote=config.plant_vote,
        tta=config.tta,
        keep_worst=config.worst,
        device=device,
        progress=config.progress,
    )
    elapsed = time.perf_counter() - started
    if not result.per_image:
        raise WeedsegError(f"{config.data}: no image of split {config.split!r} could be read")
    header = {
        "model": str(loaded.path),
        "data": str(Path(config.data)),
        "split": config.split,
        "settings": {
            **asdict(config),
            "input_scale": input_scale,
            "device": str(device),
            "ignore_index": IGNORE_INDEX,
        },
        "checkpoint": {
            "step": loaded.meta.step,
            "seed": loaded.meta.seed,
            "metrics": loaded.meta.metrics,
        },
        "speed_ms_per_image": round(1000 * elapsed / len(result.per_image), 1),
    }
    with atomic_dir(config.out, force=config.force) as tmp:
        report = write_report(
            tmp,
            matrix=result.matrix,
            classes=info.classes,
            per_image=result.per_image,
            worst=result.worst,
            skipped=result.skipped,
            header=header,
            consistency=result.consistency.to_dict(),
        )
    return report
