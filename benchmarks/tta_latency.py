"""What does flip test-time augmentation cost? `Predictor.predict` latency, `tta` none vs flip.

One predictor per mode on the same photos (CWFID's first 10 by default), one warm-up call, then
the median milliseconds per photo; the modes alternate twice so drift on a shared machine shows.

    .venv/bin/python benchmarks/tta_latency.py --model bundles/cwfid \
        --images ../shared/datasets/cwfid/images
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from weedseg.imageio import read_image
from weedseg.infer import Predictor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="bundle folder")
    parser.add_argument("--images", type=Path, required=True, help="folder of photos")
    parser.add_argument("--count", type=int, default=10, help="photos (the first N by name)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two modes")
    args = parser.parse_args()
    files = sorted(p for p in args.images.iterdir() if p.is_file())[: args.count]
    images = [read_image(p) for p in files]
    height, width = images[0].shape[:2]
    print(f"{len(images)} photos from {args.images}, first {width}x{height}")
    for _ in range(args.rounds):
        for mode in ("none", "flip"):
            predictor = Predictor.from_bundle(args.model, tta=mode)
            predictor.predict(images[0])  # warm-up
            times = []
            for image in images:
                began = time.perf_counter()
                predictor.predict(image)
                times.append((time.perf_counter() - began) * 1000)
            print(
                f"tta {mode}: median {statistics.median(times):.0f} ms per photo "
                f"(min {min(times):.0f}, max {max(times):.0f}); {predictor.describe()}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
