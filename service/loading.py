"""Loading a bundle into a warmed-up `ModelHandle` (startup and /v1/admin/reload)."""

from __future__ import annotations

from pathlib import Path

from weedseg.service.batcher import ModelHandle
from weedseg.service.settings import Settings


def model_version(manifest) -> str:
    """`<model name>@<first 12 hex of model.onnx's sha256>`: changes whenever the weights do."""
    digest = manifest.files.get("model.onnx", "")[:12] or "unversioned"
    return f"{manifest.model_name}@{digest}"


def load_handle(path: Path, settings: Settings) -> ModelHandle:
    """Verify and load a bundle, run one warm-up batch; raises BundleError for a bad bundle.

    A symlinked path (`current` -> `v0007`) is resolved now, once, so repointing it takes
    effect at the next load and a load never mixes files of two targets.
    """
    from weedseg.infer import Predictor

    path = Path(path).resolve()
    predictor = Predictor.from_bundle(
        path,
        providers=settings.providers,
        precision=settings.precision,
        batch_size=settings.batch_size,
    )
    if settings.warmup:
        predictor.warmup()
    return ModelHandle(predictor, str(path), model_version(predictor.manifest))
