"""Tile seams and one label per plant: stitched tiles vs blended tiles vs blended + plant vote.

Runs a bundle over a dataset split three ways with the same windows: `stitch` (each pixel's class
from the window whose core holds it, the runtime's merge before issue 19), `blend` (probabilities
blended with weights falling smoothly to the window edges, the default now) and `blend+vote` (the
blended map after `weedseg.infer.plant_vote`). For each: mIoU, the mixed-region rate (with the
ground truth's), class changes across tile-core borders against one pixel beside them, crop
plants kept (`weedseg.evaluate.consistency`) and ms per megapixel of `Predictor.predict`.

Both merges run on every image in turn, so a change in machine load hits both alike; the vote
is timed on its own (on the blend's probabilities) and `blend+vote` is charged blend + vote.
`--upscale-mpx 8` enlarges the photos (bicubic; masks nearest) to that many megapixels to mimic
large camera frames. `--overlay` writes a before/after crop at the worst seam of the stitched maps.

    .venv/bin/python benchmarks/seams.py --model BUNDLE --data DATASET --split test \
        [--upscale-mpx 8 --images 10] [--overlap 64] [--overlay out.jpg] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from weedseg.data.format import DatasetInfo
from weedseg.evaluate.consistency import ConsistencyCounts
from weedseg.evaluate.metrics import ConfusionMatrix
from weedseg.imageio import read_image, read_mask, write_image
from weedseg.infer import Predictor
from weedseg.infer.plant_vote import plant_vote
from weedseg.infer.render import overlay
from weedseg.tiling import core_borders

MODES = ("stitch", "blend", "blend+vote")
CROP_PX = 320  # side of the before/after overlay crop


def upscale(image: np.ndarray, mask: np.ndarray, mpx: float) -> tuple[np.ndarray, np.ndarray]:
    """Photo (bicubic) and mask (nearest) enlarged to about `mpx` megapixels."""
    factor = (mpx * 1e6 / (image.shape[0] * image.shape[1])) ** 0.5
    size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
    return (
        cv2.resize(image, size, interpolation=cv2.INTER_CUBIC),
        cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST),
    )


def worst_seam(labels: np.ndarray, rows: list[int], cols: list[int]) -> tuple[int, int, int]:
    """(count, y, x): the CROP_PX square of labels [H, W] with the most class changes across
    tile-core borders, by its top-left corner."""
    changes = np.zeros(labels.shape, dtype=np.float32)
    for b in rows:
        changes[b] += labels[b - 1] != labels[b]
    for b in cols:
        changes[:, b] += labels[:, b - 1] != labels[:, b]
    window = cv2.boxFilter(changes, -1, (CROP_PX, CROP_PX), normalize=False)
    height, width = labels.shape
    half = CROP_PX // 2
    inner = window[half : height - half + 1, half : width - half + 1]
    y, x = np.unravel_index(int(inner.argmax()), inner.shape)
    return int(inner[y, x]), int(y), int(x)


def before_after(
    image: np.ndarray, before: np.ndarray, after: np.ndarray, y: int, x: int, classes
) -> np.ndarray:
    """Two overlay crops side by side, titled: today's stitching | blending + plant vote."""
    panels = []
    for labels, title in ((before, "stitched tiles"), (after, "blended + plant vote")):
        crop = overlay(image, labels, classes)[y : y + CROP_PX, x : x + CROP_PX]
        strip = np.full((24, CROP_PX, 3), 255, dtype=np.uint8)
        cv2.putText(strip, title, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        panels.append(np.concatenate([strip, crop]))
    gap = np.full((CROP_PX + 24, 6, 3), 255, dtype=np.uint8)
    return np.concatenate([panels[0], gap, panels[1]], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="bundle folder")
    parser.add_argument("--data", required=True, help="canonical labeled dataset")
    parser.add_argument("--split", default="test")
    parser.add_argument("--images", type=int, help="first N images of the split")
    parser.add_argument("--upscale-mpx", type=float, help="enlarge photos to this many Mpx")
    parser.add_argument("--tile", type=int)
    parser.add_argument("--overlap", type=int)
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads (default: all cores)")
    parser.add_argument("--overlay", help="write the before/after crop here (JPEG or PNG)")
    parser.add_argument("--json", help="write the table's figures here")
    args = parser.parse_args()

    blend = Predictor.from_bundle(
        args.model, tile=args.tile, overlap=args.overlap, threads=args.threads, merge="blend"
    )
    tile, overlap = blend.tiling.tile, blend.tiling.overlap
    stitch = Predictor(blend.bundle, blend.session, tile, overlap, merge="stitch")
    info = DatasetInfo.load(args.data)
    names = [c.name for c in blend.classes]
    matrices = {mode: ConfusionMatrix(len(names)) for mode in MODES}
    counts = {mode: ConsistencyCounts() for mode in MODES}
    seconds = dict.fromkeys(MODES, 0.0)
    megapixels = 0.0
    best_seam = (-1, None)
    stems = info.split(args.split)[: args.images]
    blend.predict(read_image(info.image_path(stems[0])))  # warm-up, untimed
    for stem in stems:
        image, target = read_image(info.image_path(stem)), read_mask(info.mask_path(stem))
        if args.upscale_mpx:
            image, target = upscale(image, target, args.upscale_mpx)
        megapixels += image.shape[0] * image.shape[1] / 1e6
        rows = core_borders(image.shape[0], tile, overlap)
        cols = core_borders(image.shape[1], tile, overlap)
        started = time.perf_counter()
        stitched = stitch.predict(image).labels
        seconds["stitch"] += time.perf_counter() - started
        started = time.perf_counter()
        blended = blend.predict(image, return_probs=True)
        seconds["blend"] += time.perf_counter() - started
        started = time.perf_counter()
        voted = plant_vote(blended.labels, blended.probs)
        seconds["blend+vote"] += time.perf_counter() - started  # the vote alone, for now
        for mode, labels in zip(MODES, (stitched, blended.labels, voted), strict=True):
            matrices[mode].update(target, labels)
            counts[mode].update(target, labels, names, rows, cols)
        if args.overlay and (rows or cols):
            seam = worst_seam(stitched, rows, cols)
            if seam[0] > best_seam[0]:
                crop = before_after(image, stitched, voted, seam[1], seam[2], blend.classes)
                best_seam = (seam[0], crop)
    seconds["blend+vote"] += seconds["blend"]
    size = f"upscaled to {args.upscale_mpx:g} Mpx" if args.upscale_mpx else "native size"
    print(f"model {blend.describe()}; {len(stems)} {args.split} images of {args.data} ({size})")
    print(
        "| merge | mIoU | mixed-region rate (GT) | class changes across core borders / beside "
        "| crop plants kept | ms per Mpx |"
    )
    print("|---|---|---|---|---|---|")
    table = {}
    for mode in MODES:
        miou = matrices[mode].compute().miou
        rates = counts[mode].to_dict()
        ms_per_mpx = 1000 * seconds[mode] / megapixels
        table[mode] = {"mIoU": miou, **rates, "ms_per_mpx": ms_per_mpx}
        c = rates["counts"]
        kept = rates["crop_plants_kept"]
        across, beside = rates["border_disagreement"], rates["beside_border_disagreement"]
        print(
            f"| {mode} | {miou:.4f} | {c['pred_mixed']}/{c['pred_regions']} = "
            f"{_pct(rates['mixed_region_rate'])} ({c['true_mixed']}/{c['true_regions']} = "
            f"{_pct(rates['mixed_region_rate_ground_truth'])}) | {_pct(across, 3)} / "
            f"{_pct(beside, 3)} | {c['crop_kept']}/{c['crop_plants']} = {_pct(kept)} "
            f"| {ms_per_mpx:.0f} |"
        )
    vote_ms = 1000 * (seconds["blend+vote"] - seconds["blend"]) / megapixels
    print(f"plant vote alone: {vote_ms:.1f} ms per Mpx; {megapixels:.1f} Mpx in all")
    if args.overlay and best_seam[1] is not None:
        write_image(args.overlay, best_seam[1])
        print(f"before/after crop ({best_seam[0]} changes across core borders): {args.overlay}")
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k not in ("json", "overlay")}
        record = {"settings": settings, "model": blend.describe(), "megapixels": megapixels}
        Path(args.json).write_text(json.dumps({**record, "table": table}, indent=2) + "\n")


def _pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


if __name__ == "__main__":
    main()
