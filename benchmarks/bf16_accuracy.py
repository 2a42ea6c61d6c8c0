"""Is bf16 training accuracy-neutral? CWFID validation mIoU, fp32 vs bf16, same steps, 2 seeds.

Validation only (a fixed 20% of the CWFID train photos held out, as `weedseg finetune` does
without a val split); the test split is never touched. `auto` may choose bf16 for a model only
if the two precisions differ by less than the seed spread.

    python benchmarks/bf16_accuracy.py --data data/cwfid --work ../work/bf16 --arch unet-resnet18
    python benchmarks/bf16_accuracy.py --summary

One JSON per (arch, precision, seed) under benchmarks/results/bf16_accuracy/; an existing result
is skipped, so a killed run continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "bf16_accuracy"


def run_one(args, arch: str, precision: str, seed: int) -> dict:
    from weedseg.bench.machine import cpu_model
    from weedseg.finetune.config import FinetuneConfig
    from weedseg.finetune.trainer import run_finetune

    run = args.work / f"{arch}-{precision}-{seed}"
    config = FinetuneConfig(
        data=str(args.data), out=str(run), arch=arch, steps=args.steps, batch=8, size=192,
        val_every=args.steps, seed=seed, precision=precision, memory_format="channels_last",
        resume=(run / "config.yaml").is_file(),
    )  # fmt: skip
    began = time.perf_counter()
    result = run_finetune(config, log=print)
    scores = result.history[-1]
    return {
        "arch": arch,
        "precision": precision,
        "seed": seed,
        "steps": args.steps,
        "val_mIoU": scores["mIoU"],
        "val_iou": {k: v["iou"] for k, v in scores["per_class"].items()},
        "wall_s": round(time.perf_counter() - began, 1),
        "machine": f"{os.cpu_count()}-core {cpu_model()}, no GPU",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/bf16_accuracy.py " + " ".join(sys.argv[1:]),
    }


def summary() -> str:
    rows = [json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))]
    lines = ["| model | precision | seeds | val mIoU | per seed | wall s (mean) |"]
    lines.append("|---" * 6 + "|")
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["arch"], row["precision"]), []).append(row)
    for (arch, precision), runs in sorted(groups.items()):
        values = [r["val_mIoU"] for r in runs]
        spread = statistics.stdev(values) if len(values) > 1 else float("nan")
        walls = statistics.mean(r["wall_s"] for r in runs)
        lines.append(
            f"| {arch} | {precision} | {len(runs)} | {statistics.mean(values):.4f} +- "
            f"{spread:.4f} | {', '.join(f'{v:.4f}' for v in values)} | {walls:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="converted CWFID (weedseg data convert cwfid)")
    parser.add_argument("--work", type=Path, help="run folders (outside the repository)")
    parser.add_argument("--arch", default="unet-resnet18")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--summary", action="store_true")
    args = parser.parse_args()
    if not args.summary:
        OUT.mkdir(parents=True, exist_ok=True)
        for seed in range(args.seeds):
            for precision in ("fp32", "bf16"):
                target = OUT / f"{args.arch}-{precision}-{seed}.json"
                if not target.is_file():
                    result = run_one(args, args.arch, precision, seed)
                    target.write_text(json.dumps(result, indent=1) + "\n")
    print(summary())


if __name__ == "__main__":
    main()
