"""Wall time of the masking schedules for the same optimizer steps: random vs paper vs online.

    .venv/bin/python benchmarks/pretrain_overhead.py [--steps 60] [--images 10] [--write]

Each arm pretrains the same model on the same synthetic field images (256 px crops, batch 8,
CPU) for the same number of steps; the ratio is each arm's wall time over random masking's.
The paper schedule's extra cost is one scoring pass per partition (5 forward passes per image),
so its ratio shrinks as steps per image grow; the online per-batch schedule pays
`score_masks` forward passes every step whatever the budget. `--write` replaces this script's
section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from results_md import replace_section

from weedseg.data.synth.config import SynthConfig
from weedseg.data.synth.field import render_field
from weedseg.imageio import write_image
from weedseg.pretrain import PretrainConfig, pretrain

ARMS = {  # the first arm is the baseline of the ratio column
    "random": dict(masking="random"),
    "paper": dict(masking="selective", schedule="paper"),
    "online-batch-1": dict(masking="selective", schedule="online", score_masks=1),
    "online-batch-5": dict(masking="selective", schedule="online"),
    "online-refresh-20": dict(masking="selective", schedule="online", online_refresh=20),
}
ARM_LABELS = {
    "random": "random",
    "paper": "paper (10 partitions, 5 scoring masks)",
    "online-batch-1": "online, each batch scored, 1 mask",
    "online-batch-5": "online, each batch scored, 5 masks",
    "online-refresh-20": "online, pool rescored every 20 steps, 5 masks",
}


def make_images(root: Path, count: int, size: int) -> None:
    config = SynthConfig(n=count, size=size, seed=0)
    for index in range(count):
        image, _ = render_field(config, index)
        write_image(root / f"field_{index:03d}.png", image)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=384)
    parser.add_argument("--arch", default="unet-mobilenetv3-lite")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=0, help="0: CPU time counts all work")
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(2)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp) / "images"
        make_images(images, args.images, args.image_size)
        for name in args.arms:
            knobs = ARMS[name]
            cfg = PretrainConfig(
                images=str(images),
                out=str(Path(tmp) / f"{len(rows)}-{name}"),
                arch=args.arch,
                steps=args.steps,
                batch=args.batch,
                size=args.size,
                workers=args.workers,
                image_every=0,
                log_every=args.steps,
                checkpoint_every=args.steps,
                device="cpu",
                **knobs,
            )
            start, start_cpu = time.perf_counter(), time.process_time()
            pretrain(cfg, log=lambda message: None)
            seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
            rows.append((ARM_LABELS[name], seconds, cpu, args.steps * args.batch / seconds))
            print(f"{name}: {seconds:.1f} s wall, {cpu:.1f} s CPU", flush=True)

    base, base_cpu = rows[0][1], rows[0][2]
    table = [
        "| schedule | wall time (s) | x random | CPU time (s) | x random | images/s |",
        "|---|---|---|---|---|---|",
        *[
            f"| {n} | {s:.1f} | {s / base:.2f} | {c:.1f} | {c / base_cpu:.2f} | {ips:.2f} |"
            for n, s, c, ips in rows
        ],
    ]
    text = "\n".join(table)
    print(text)
    if args.write:
        write_section(args, text)


def write_section(args: argparse.Namespace, table: str) -> None:
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = "\n".join(
        [
            "## Pretraining schedule overhead (`benchmarks/pretrain_overhead.py`)",
            "",
            f"Command: `.venv/bin/python {' '.join(sys.argv)}`  ",
            f"Machine: 2-core x86-64 CPU, no GPU ({platform.processor() or platform.machine()}), "
            f"shared with other jobs (noisy); {today}.  ",
            f"Setup: {args.arch}, {args.images} synthetic {args.image_size} px field images, "
            f"{args.size} px crops, batch {args.batch}, {args.steps} optimizer steps per arm, "
            f"torch threads 2, {args.workers} loader worker(s); whole runs (model build, "
            "normalisation pass, scoring, checkpoints included). CPU time is this process's "
            "(all of the work with 0 loader workers); contention inflates it too (spinning "
            "OpenMP threads), so on a shared machine both columns carry the load's noise.",
            "",
            table,
            "",
            "Cost model (forward passes on top of training, one step ~ 3 forward passes of B "
            "crops): paper = 5 passes per image per partition at 1.25x the crop side, i.e. "
            "5 x 1.56 x N / (3 x steps x B) of training for N images, falling with steps per "
            "image (0.6% for CWFID's 39 images at 2000 steps of 8); online per batch = "
            "score_masks / 3 of training whatever the budget; online with refresh R = the "
            "paper's pass over the whole pool every R steps.",
        ]
    )
    replace_section("pretrain_overhead", section)


if __name__ == "__main__":
    main()
