"""`suggest_labels(cfg)`: score every photo, pick k, write the list, the CSV and the sheet."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from weedseg.atomic import write_atomic
from weedseg.data.format import find_images
from weedseg.errors import WeedsegError
from weedseg.imageio import ImageReadError, read_image, write_image
from weedseg.model_paths import resolve_model
from weedseg.suggest.config import SuggestConfig
from weedseg.suggest.embeddings import image_embedding
from weedseg.suggest.selection import combine, select_diverse
from weedseg.suggest.sheet import contact_sheet
from weedseg.suggest.signals import (
    Signal,
    bundle_entropy,
    fit_side,
    reconstruction_difficulty,
    run_entropy,
)


@dataclass
class SuggestResult:
    """The picked photos (best first) and where the outputs went."""

    chosen: list[Path]
    list_path: Path
    csv_path: Path
    sheet_path: Path
    scored: int
    skipped: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def output_paths(out: str | Path) -> tuple[Path, Path, Path]:
    """(list, csv, contact sheet) beside each other: to_label.txt, .csv, .png."""
    out = Path(out)
    if out.suffix.lower() in (".csv", ".png"):
        raise WeedsegError(
            f"--out {out}: name the list (e.g. to_label.txt); .csv/.png go beside it"
        )
    return out, out.with_suffix(".csv"), out.with_suffix(".png")


def build_signals(cfg: SuggestConfig) -> dict[str, Signal]:
    """The signals the given models provide: entropy (segmenter), difficulty (pretraining run)."""
    signals: dict[str, Signal] = {}
    model = resolve_model(cfg.model)  # a bundle (or what has one) is scored torch-free
    if model.bundle is not None:
        signals["entropy"] = bundle_entropy(model.bundle)
    elif _task(model.checkpoint()) == "segmentation":
        signals["entropy"] = run_entropy(model.checkpoint(), cfg.device)
    else:
        signals["difficulty"] = reconstruction_difficulty(
            cfg.model, cfg.masks, cfg.seed, cfg.device
        )
    if cfg.pretrain:
        signals["difficulty"] = reconstruction_difficulty(
            cfg.pretrain, cfg.masks, cfg.seed, cfg.device
        )
    return signals


def _task(checkpoint: Path) -> str:
    """`segmentation` or `reconstruction`: what a checkpoint was trained for."""
    from weedseg.checkpoint import read_sidecar

    return str(read_sidecar(checkpoint).get("task"))


def suggest_labels(cfg: SuggestConfig, log: Callable[[str], None] = print) -> SuggestResult:
    """Rank the photos in `cfg.images` and write the k to label next."""
    started = time.perf_counter()
    list_path, csv_path, sheet_path = output_paths(cfg.out)
    paths = find_images(cfg.images)
    if not paths:
        raise WeedsegError(f"--images {cfg.images}: no images found")
    signals = build_signals(cfg)
    values: dict[str, list[float]] = {name: [] for name in signals}
    embeddings, kept, skipped = [], [], []
    for path in _progress(paths):
        try:
            image = fit_side(read_image(path), cfg.max_side)
        except ImageReadError as exc:
            skipped.append({"path": str(path), "reason": str(exc)})
            continue
        for name, signal in signals.items():
            values[name].append(signal(image))
        embeddings.append(image_embedding(image))
        kept.append(path)
    if not kept:
        raise WeedsegError(f"--images {cfg.images}: none of the {len(paths)} images is readable")
    arrays = {name: np.asarray(v, dtype=np.float64) for name, v in values.items()}
    weights = {"entropy": cfg.uncertainty_weight, "difficulty": cfg.difficulty_weight}
    scores = combine(arrays, weights)
    chosen = select_diverse(scores, np.stack(embeddings) if cfg.diversity else None, cfg.k)
    _write_outputs(list_path, csv_path, sheet_path, kept, arrays, scores, chosen)
    for item in skipped:
        log(f"skipped {item['path']}: {item['reason']}")
    return SuggestResult(
        chosen=[kept[i] for i in chosen],
        list_path=list_path,
        csv_path=csv_path,
        sheet_path=sheet_path,
        scored=len(kept),
        skipped=skipped,
        seconds=time.perf_counter() - started,
    )


def _progress(paths: list[Path]):
    from tqdm import tqdm

    return tqdm(paths, desc="score", unit="img", dynamic_ncols=True)


def _write_outputs(
    list_path: Path,
    csv_path: Path,
    sheet_path: Path,
    paths: list[Path],
    signals: dict[str, np.ndarray],
    scores: np.ndarray,
    chosen: list[int],
) -> None:
    """The list (picked, best first), the CSV (every image, by score) and the contact sheet."""
    write_atomic(list_path, "".join(f"{paths[i]}\n" for i in chosen))
    rank_of = {index: rank for rank, index in enumerate(chosen, 1)}
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["suggested_rank", "path", "score", *signals])
    for i in np.argsort(-scores, kind="stable"):
        row = [rank_of.get(int(i), ""), str(paths[i]), f"{scores[i]:.4f}"]
        writer.writerow(row + [f"{signals[name][i]:.5f}" for name in signals])
    write_atomic(csv_path, buffer.getvalue())
    thumbs = [read_image(paths[i]) for i in chosen]
    captions = [
        (f"#{rank} score {scores[i]:.3f}", paths[i].name) for rank, i in enumerate(chosen, 1)
    ]
    write_image(sheet_path, contact_sheet(thumbs, captions))
