"""How long the data tools take: converting the real datasets, checking them, synthetic fields.

    .venv/bin/python benchmarks/data_tools.py [--datasets ../shared/datasets] [--runs 3]

Converts into a temporary folder (deleted afterwards); skips a real dataset that is absent.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

from weedseg.data.check import check_dataset
from weedseg.data.convert import convert_color_masks, convert_cwfid
from weedseg.data.synth import SynthConfig, render_field

PEANUT_SPLITS = ["train=0001-0280", "val=0281-0320", "test=0321-0400"]


def timed(fn, runs: int) -> float:
    """Median wall seconds of `fn()` over `runs`, its prints silenced."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        jobs = {
            "cwfid": lambda dst: convert_cwfid(args.datasets / "cwfid", dst, force=True),
            "peanut": lambda dst: convert_color_masks(
                args.datasets / "peanut", dst, split_specs=PEANUT_SPLITS, force=True
            ),
        }
        for name, convert in jobs.items():
            if not (args.datasets / name).is_dir():
                print(f"{name}: not found under {args.datasets}, skipped")
                continue
            dst = Path(tmp) / name
            seconds = timed(lambda dst=dst, convert=convert: convert(dst), args.runs)
            count = len(list((dst / "masks").iterdir()))
            check = timed(lambda dst=dst: check_dataset(dst), args.runs)
            print(f"{name}: convert {count} pairs {seconds:.2f} s, check {check:.2f} s")
    for size in (256, 512):
        config = SynthConfig(size=size)
        start = time.perf_counter()
        for index in range(20):
            render_field(config, index)
        print(f"synth {size} px: {(time.perf_counter() - start) / 20 * 1000:.0f} ms per field")


if __name__ == "__main__":
    main()
