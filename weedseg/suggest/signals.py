"""Per-image signals of how much a label would help.

- entropy: mean per-pixel prediction entropy / log K (0 = sure everywhere, 1 = uniform), from a
  bundle (ONNX Runtime, no torch) or a segmentation run;
- difficulty: SMS reconstruction difficulty (L1 + 1 - SSIM of randomly masked patches) from a
  pretraining run: photos unlike anything the encoder has learned to reconstruct.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from weedseg.errors import WeedsegError
from weedseg.tiling import SIZE_MULTIPLE, predict_tiled

Signal = Callable[[np.ndarray], float]  # HxWx3 uint8 RGB -> score


def mean_entropy(probs: np.ndarray) -> float:
    """Mean normalised entropy of softmax probabilities [K, H, W]."""
    p = np.clip(probs, 1e-8, 1.0)
    entropy = -(p * np.log(p)).sum(axis=0)  # [H, W]
    return float(entropy.mean() / np.log(probs.shape[0]))


def fit_side(image: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale so the long side is at most `max_side` (scoring cost stays bounded)."""
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def bundle_entropy(bundle: Path) -> Signal:
    """Entropy from a bundle folder, torch-free (weedseg.infer.Predictor)."""
    from weedseg.infer import Predictor

    predictor = Predictor.from_bundle(bundle)
    return lambda image: mean_entropy(predictor.predict(image, return_probs=True).probs)


def run_entropy(path: str | Path, device: str) -> Signal:
    """Entropy from a segmentation run or checkpoint (PyTorch, tiled like evaluation)."""
    from weedseg.checkpoint import load_checkpoint
    from weedseg.distributed import resolve_device
    from weedseg.evaluate.evaluator import torch_run_batch

    loaded = load_checkpoint(path)
    torch_device = resolve_device(device)
    model = loaded.model.to(torch_device).eval()
    run_batch = torch_run_batch(model, loaded.meta.mean, loaded.meta.std, torch_device)
    classes = len(loaded.meta.classes)
    return lambda image: mean_entropy(predict_tiled(image, run_batch, classes))


def reconstruction_difficulty(path: str | Path, masks: int, seed: int, device: str) -> Signal:
    """Mean SMS difficulty of the whole image under `masks` random masks (pretraining's ratio
    and patch size; a dense forward pass, also for runs trained with sparse convolution)."""
    import torch

    from weedseg.checkpoint import load_checkpoint
    from weedseg.distributed import resolve_device
    from weedseg.masking import PatchGrid
    from weedseg.masking.difficulty import pixel_difficulty

    loaded = load_checkpoint(path, which="last")
    if loaded.task != "reconstruction":
        raise WeedsegError(f"{path}: difficulty needs a pretraining run, got a {loaded.task} one")
    torch_device = resolve_device(device)
    model = loaded.model.to(torch_device).eval()
    config = loaded.meta.config  # the pretraining run's config, as saved
    patch, ratio = int(config.get("patch", 32)), float(config.get("mask_ratio", 0.5))
    mean = torch.tensor(loaded.meta.mean, device=torch_device)
    std = torch.tensor(loaded.meta.std, device=torch_device)

    def reconstruct(masked: torch.Tensor, _pixel_masks: torch.Tensor) -> torch.Tensor:
        return model(masked)  # [N, 3, H, W]

    @torch.inference_mode()
    def score(image: np.ndarray) -> float:
        height, width = (
            max(SIZE_MULTIPLE, s // SIZE_MULTIPLE * SIZE_MULTIPLE) for s in image.shape[:2]
        )
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        x = torch.from_numpy(image).to(torch_device).permute(2, 0, 1)[None].float() / 255.0
        x = (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)  # x: [1, 3, H, W]
        generator = torch.Generator(device=torch_device).manual_seed(seed)
        grid = PatchGrid(height, width, patch)
        difficulty = pixel_difficulty(reconstruct, x, grid, mean, std, masks, ratio, generator)
        return float(difficulty.mean())

    return score
