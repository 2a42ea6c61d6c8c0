"""Does labeling the suggested k beat labeling a random k? (issue 8, `weedseg suggest-labels`)

On CWFID: per seed, a base segmenter is trained on `--initial` random train images; the rest of
the train split is the unlabeled pool. `suggest-labels` (the base's entropy, optionally SMS
difficulty from `--pretrain`, plus diversity) picks k; a random draw picks k too. Each arm is
fine-tuned from the same init on initial + its k and scored once, at the end, on the CWFID test
split. Writes result.json (per seed and mean) and prints the section for benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/suggest_labels_cwfid.py --out runs/bench/suggest_cwfid \
        --seeds 3 --initial 4 --k 8 --steps 400 --scale 0.5 [--pretrain runs/pre_cwfid]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
from retrain_cwfid import DATA, add_training_arguments, crop_flag, subset

from weedseg.atomic import write_atomic
from weedseg.data.format import DatasetInfo


def finetune(args, data: DatasetInfo, out: Path) -> float:
    """Test mIoU of a run trained on the dataset's train split (validated once: at the end)."""
    from weedseg.finetune.config import FinetuneConfig
    from weedseg.finetune.trainer import run_finetune

    shutil.rmtree(out, ignore_errors=True)
    result = run_finetune(
        FinetuneConfig(
            data=str(data.root), out=str(out), init=args.init, arch=args.arch, steps=args.steps,
            batch=args.batch, size=args.size, crop_scale=args.crop_scale,
            val_split="test", val_every=args.steps,
            workers=args.workers, device=args.device, seed=args.seed,
        ),
        log=lambda _: None,
    )  # fmt: skip
    return float(result.best_miou)


def one_seed(args, cwfid: DatasetInfo, seed: int) -> dict:
    from weedseg.suggest.config import SuggestConfig
    from weedseg.suggest.runner import suggest_labels

    root = args.out / f"seed_{seed}"
    train, test = cwfid.split("train"), cwfid.split("test")
    rng = np.random.default_rng(seed)
    initial = sorted(rng.choice(train, args.initial, replace=False).tolist())
    pool = [s for s in train if s not in initial]
    base_data = subset(cwfid, root / "data_initial", {"train": initial, "test": test}, 1.0)
    base_miou = finetune(args, base_data, root / "base")
    pool_dir = root / "pool"
    shutil.rmtree(pool_dir, ignore_errors=True)
    pool_dir.mkdir(parents=True)
    for stem in pool:
        os.link(cwfid.image_path(stem), pool_dir / cwfid.images[stem])
    started = time.perf_counter()
    picked = suggest_labels(
        SuggestConfig(
            images=str(pool_dir), model=str(root / "base"), out=str(root / "suggested.txt"),
            k=args.k, pretrain=args.pretrain, max_side=args.max_side, device=args.device,
            seed=seed,
        ),
        log=lambda _: None,
    )  # fmt: skip
    suggest_s = time.perf_counter() - started
    by_name = {cwfid.images[s]: s for s in pool}
    arms = {
        "suggested": sorted(by_name[p.name] for p in picked.chosen),
        "random": sorted(np.random.default_rng(seed + 1000).choice(pool, args.k, False).tolist()),
    }
    scores = {}
    for arm, extra in arms.items():
        data = subset(cwfid, root / f"data_{arm}", {"train": initial + extra, "test": test}, 1.0)
        scores[arm] = finetune(args, data, root / arm)
    return {
        "seed": seed,
        "initial": initial,
        "picked": arms,
        "base_mIoU": base_miou,
        "mIoU": scores,
        "suggest_s": round(suggest_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench/suggest_cwfid"))
    parser.add_argument("--cwfid", type=Path, default=DATA / "cwfid")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--initial", type=int, default=4, help="labeled images to start from")
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--init", default="none", help="pretraining run every arm starts from")
    parser.add_argument("--pretrain", default="", help="pretraining run for SMS difficulty")
    add_training_arguments(parser)
    parser.add_argument("--max-side", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0, help="training seed (data seeds vary)")
    args = parser.parse_args()

    source = DatasetInfo.load(args.cwfid)
    cwfid = subset(source, args.out / "cwfid", source.splits, args.scale)
    runs = [one_seed(args, cwfid, seed) for seed in range(args.seeds)]
    mean = {arm: statistics.mean(r["mIoU"][arm] for r in runs) for arm in ("suggested", "random")}
    summary = {
        "machine": f"{platform.machine()} {os.cpu_count()} CPU cores, device {args.device}",
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "settings": {k: str(v) for k, v in vars(args).items()},
        "mean_mIoU": mean,
        "mean_base_mIoU": statistics.mean(r["base_mIoU"] for r in runs),
        "suggested_beats_random": mean["suggested"] > mean["random"],
        "runs": runs,
    }
    write_atomic(args.out / "result.json", json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    rows = "\n".join(
        f"| {r['seed']} | {r['base_mIoU']:.4f} | {r['mIoU']['random']:.4f} | "
        f"{r['mIoU']['suggested']:.4f} |"
        for r in runs
    )
    print(
        f"\n## suggest-labels on CWFID: suggested k vs random k\n\n"
        f"`.venv/bin/python benchmarks/suggest_labels_cwfid.py --seeds {args.seeds} --initial "
        f"{args.initial} --k {args.k} --steps {args.steps} --scale {args.scale} --size {args.size}"
        f"{crop_flag(args.crop_scale)}` on "
        f"{summary['machine']}, {summary['date']}. Test mIoU (CWFID test, "
        f"{len(cwfid.split('test'))} images) after fine-tuning on {args.initial} + {args.k} "
        "images.\n\n"
        f"| seed | initial only | + random k | + suggested k |\n|---|---|---|---|\n{rows}\n"
        f"| **mean** | {summary['mean_base_mIoU']:.4f} | {mean['random']:.4f} | "
        f"{mean['suggested']:.4f} |\n"
    )


if __name__ == "__main__":
    main()
