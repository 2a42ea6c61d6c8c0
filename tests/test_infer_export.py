"""Predictor on a bundle exported from a real smp model agrees with the PyTorch model."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
bundle_export = pytest.importorskip("weedseg.export.bundle_export")

from bundles import field_image  # noqa: E402
from weedseg.export.config import ExportConfig  # noqa: E402

from weedseg.checkpoint import save_checkpoint  # noqa: E402
from weedseg.classes import DEFAULT_CLASSES  # noqa: E402
from weedseg.infer import Predictor  # noqa: E402
from weedseg.models import build_model, spec_from_name  # noqa: E402

MEAN, STD = (0.45, 0.45, 0.4), (0.2, 0.2, 0.25)


@pytest.mark.slow
def test_exported_bundle_matches_torch(tmp_path) -> None:
    torch.manual_seed(0)
    spec = spec_from_name("unet-tiny")
    model = build_model(spec, len(DEFAULT_CLASSES)).eval()
    meta = {"classes": [c.to_dict() for c in DEFAULT_CLASSES], "mean": MEAN, "std": STD}
    stem = tmp_path / "run" / "checkpoints" / "best"
    save_checkpoint(stem, model, spec=spec, task="segmentation", meta=meta)
    config = ExportConfig(
        source=str(tmp_path / "run"),
        out=str(tmp_path / "bundle"),
        imgsz=64,
        dynamic=True,
        max_size=128,
        verify_n=2,
    )
    bundle_export.export_bundle(config)

    image = field_image(96, 128, seed=5)  # fits one 128 tile: one pass, no blending
    predictor = Predictor.from_bundle(tmp_path / "bundle", tile=128, overlap=32)
    prediction = predictor.predict(image, return_probs=True)
    x = (torch.from_numpy(image).float() / 255 - torch.tensor(MEAN)) / torch.tensor(STD)
    with torch.no_grad():
        logits = model(x.permute(2, 0, 1)[None])[0]  # [K, 96, 128]
    expected = torch.softmax(logits, 0).numpy()
    assert (prediction.labels == logits.argmax(0).numpy()).mean() >= 0.999
    np.testing.assert_allclose(prediction.probs, expected, atol=1e-3)

    big = field_image(200, 260, seed=6)  # tiled: still one class map at full size
    assert predictor.predict(big).labels.shape == (200, 260)
