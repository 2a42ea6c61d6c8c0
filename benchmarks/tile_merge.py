"""Stitched vs blended tiles: what the runtime's class-map stitching costs in accuracy.

A predictor with `merge="stitch"` takes the tiles' own class maps (each pixel from the window
whose core holds it); the default (`weedseg predict`, the service, `weedseg evaluate`) blends the
tiles' probabilities. Both use the same windows; benchmarks/seams.py measures the seams. This
runs a bundle both ways over a dataset split and prints mIoU / per-class IoU for each, their
pixel agreement and the time per image.

    .venv/bin/python benchmarks/tile_merge.py --model BUNDLE --data /work/data/cwfid --split test
"""

from __future__ import annotations

import argparse
import time

from weedseg.data.format import DatasetInfo
from weedseg.evaluate.metrics import ConfusionMatrix
from weedseg.imageio import read_image, read_mask
from weedseg.infer import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="bundle folder")
    parser.add_argument("--data", required=True, help="canonical labeled dataset")
    parser.add_argument("--split", default="test")
    parser.add_argument("--tile", type=int)
    parser.add_argument("--overlap", type=int)
    args = parser.parse_args()

    predictor = Predictor.from_bundle(args.model, tile=args.tile, overlap=args.overlap)
    tile, overlap = predictor.tiling.tile, predictor.tiling.overlap
    stitcher = Predictor(predictor.bundle, predictor.session, tile, overlap, merge="stitch")
    info = DatasetInfo.load(args.data)
    names = [c.name for c in predictor.classes]
    matrices = {"stitched": ConfusionMatrix(len(names)), "blended": ConfusionMatrix(len(names))}
    seconds = {"stitched": 0.0, "blended": 0.0}
    same = total = 0
    stems = info.split(args.split)
    for stem in stems:
        image, target = read_image(info.image_path(stem)), read_mask(info.mask_path(stem))
        labels = {}
        for merge, runner in (("stitched", stitcher), ("blended", predictor)):
            started = time.perf_counter()
            labels[merge] = runner.predict(image).labels
            seconds[merge] += time.perf_counter() - started
            matrices[merge].update(target, labels[merge])
        same += int((labels["stitched"] == labels["blended"]).sum())
        total += labels["stitched"].size
    print(f"model {predictor.describe()}; {len(stems)} {args.split} images of {args.data}")
    print("| merge | mIoU | " + " | ".join(f"{n} IoU" for n in names) + " | ms per image |")
    print("|---|---|" + "---|" * len(names) + "---|")
    for merge, matrix in matrices.items():
        metrics = matrix.compute()
        ious = " | ".join(f"{v:.4f}" for v in metrics.iou)
        ms = 1000 * seconds[merge] / len(stems)
        print(f"| {merge} | {metrics.miou:.4f} | {ious} | {ms:.0f} |")
    print(f"pixel agreement stitched vs blended: {same / total:.4%} of {total} px")


if __name__ == "__main__":
    main()
