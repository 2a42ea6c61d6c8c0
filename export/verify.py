"""Export-time check that the ONNX graph computes what the PyTorch model computes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from weedseg.export.onnx_export import DeployModel

from weedseg.errors import WeedsegError
from weedseg.infer.onnx_session import cpu_session

FP32_MIN_AGREEMENT = 0.999  # share of pixels whose class must match PyTorch's


@dataclass(frozen=True)
class Verification:
    """ONNX Runtime vs PyTorch on the same inputs."""

    images: int
    pixels: int
    agreement: float  # share of pixels with the same class
    max_prob_diff: float  # largest |p_onnx - p_torch| over all pixels and classes
    mean_prob_diff: float
    threshold: float
    source: str  # what the images were

    @property
    def passed(self) -> bool:
        return self.agreement >= self.threshold

    def to_dict(self) -> dict:
        return asdict(self) | {"passed": self.passed}

    def summary(self) -> str:
        return (
            f"{self.agreement:.4%} of {self.pixels} pixels agree with PyTorch on {self.images} "
            f"{self.source} images; max |prob diff| {self.max_prob_diff:.2e}"
        )


def batches(inputs: np.ndarray, batch_size: int) -> list[np.ndarray]:
    return [inputs[i : i + batch_size] for i in range(0, len(inputs), batch_size)]


def verify_onnx(
    deploy: DeployModel,
    onnx_path: str | Path,
    inputs: np.ndarray,
    *,
    batch_size: int = 1,
    threshold: float = FP32_MIN_AGREEMENT,
    source: str = "synthetic",
) -> Verification:
    """Run `inputs` (the bundle's input layout, [N, ...]) through both and compare outputs."""
    session = cpu_session(onnx_path)
    agree = pixels = 0
    max_diff, diff_sum, values = 0.0, 0.0, 0
    deploy = deploy.eval()
    for batch in batches(inputs, batch_size):
        onnx_labels, onnx_probs = session.run(["labels", "probs"], {"images": batch})
        with torch.no_grad():
            torch_labels, torch_probs = deploy(torch.from_numpy(batch))
        diff = np.abs(onnx_probs - torch_probs.numpy())  # [B, K, H, W]
        agree += int((onnx_labels == torch_labels.numpy()).sum())
        pixels += onnx_labels.size
        max_diff = max(max_diff, float(diff.max()))
        diff_sum += float(diff.sum())
        values += diff.size
    return Verification(
        images=len(inputs),
        pixels=pixels,
        agreement=agree / max(pixels, 1),
        max_prob_diff=max_diff,
        mean_prob_diff=diff_sum / max(values, 1),
        threshold=threshold,
        source=source,
    )


def require_agreement(result: Verification) -> None:
    """Fail the export when ONNX and PyTorch disagree on too many pixels."""
    if not result.passed:
        raise WeedsegError(
            f"ONNX verification failed: only {result.agreement:.4%} of pixels agree with PyTorch "
            f"(need {result.threshold:.1%}; max |prob diff| {result.max_prob_diff:.2e}); "
            "no bundle was written"
        )
