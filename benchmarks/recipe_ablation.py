"""Which fine-tuning choices close CWFID's crop gap (issue 17)? One factor at a time, 4-fold CV.

The CWFID train photos are split into 4 folds (fixed seed). Every run fine-tunes on 3 folds and
validates on the 4th, the dataset it sees holding those two splits only: no run reads a test
photo. Each factor changes one setting of a reference recipe (the old baseline, or for the
adopted-* factors the adopted one, new-sampler-unet) and runs on every fold with 2 seeds; the
table compares the validation scores at the last step (no checkpoint is picked on the photos it
is scored on), with each factor's paired difference from its reference.
Evaluation-only factors (flip test-time augmentation) score another factor's runs again instead
of training.

    python benchmarks/recipe_ablation.py --data data/cwfid --work ../work/recipe-ablation
    python benchmarks/recipe_ablation.py --data data/cwfid --work ../work/ra --factors loss-lovasz
    python benchmarks/recipe_ablation.py --summary

One JSON per (factor, fold, seed) under benchmarks/results/recipe_ablation/; an existing result
is skipped, a killed run resumes from its last checkpoint, so the same command continues.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import yaml
from results_md import mean_std

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "recipe_ablation"
FOLDS = 4
FOLD_SEED = 0  # the same folds for every factor and seed
SEEDS = (0, 1)


@dataclass
class Budget:
    """The baseline recipe: issue 17's `weedseg finetune --arch unet-mobilenetv3 --input-scale
    0.5 --size 192 --steps 500` (the CLI row 5.5 points below the throwaway script)."""

    arch: str = "unet-mobilenetv3"
    input_scale: float = 0.5
    size: int = 192
    batch: int = 8
    steps: int = 500
    val_every: int = 100  # the validation curve (every factor's "last" is its final step)
    val_tile: int = 512
    workers: int = 2
    # pinned, so that no factor trains at another precision than the baseline ("auto" decides
    # per run, from a timing on a shared machine)
    precision: str = "fp32"
    # the sampler the ablation started from (FinetuneConfig's defaults before it changed them)
    crop_zoom: tuple[float, float] = (0.5, 1.4)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    color_jitter: bool = True


@dataclass(frozen=True)
class Times:
    """A factor's value relative to the budget's: {"steps": Times(2)} doubles the steps."""

    factor: float


# The throwaway script's sampler: plain crops at zoom ~1 of the half-size photo (area share
# 0.11-0.125), square, flips only.
PLAIN_SAMPLER = {"crop_scale": (0.11, 0.125), "crop_ratio": (1.0, 1.0), "color_jitter": False}
# The sampler the ablation chose, now FinetuneConfig's defaults: native-scale square crops at
# zoom 1, flips only; the new-sampler-* factors change the model on top of it.
NEW_SAMPLER = {"crop_zoom": (1.0, 1.0), "crop_ratio": (1.0, 1.0), "color_jitter": False}

# One setting changed against the baseline (FinetuneConfig fields, Budget ones included).
# Candidates of issue 17 not listed: how masks are resized for training (nearest, with no
# option yet) and timm- vs tu- MobileNetV3 (segmentation-models-pytorch 0.6 has tu- only).
FACTORS: dict[str, dict] = {
    "baseline": {},
    # the crop sampler's zoom: native 0.5-1.4x (default) vs plain crops at zoom ~1 of the
    # half-size photo (the throwaway script) vs whole-photo squeezes
    "zoom-1": {"crop_scale": (0.11, 0.125)},
    "zoom-whole": {"crop_scale": (0.25, 1.0)},
    "aspect-1": {"crop_ratio": (1.0, 1.0)},  # no aspect jitter (default 3/4 to 4/3)
    "colour-jitter-off": {"color_jitter": False},  # CWFID photos have R == B
    # the throwaway script's sampler all at once: plain crops at zoom ~1, square, flips only
    "plain-sampler": PLAIN_SAMPLER,
    # the two winners of the first pass together
    "recipe-v2": {
        **PLAIN_SAMPLER,
        "rare_share": 0.3,
    },
    "plain-sampler-fpn": {  # is the default FPN still behind the U-Net on the new sampler?
        **PLAIN_SAMPLER,
        "arch": "fpn-mobilenetv3",
    },
    # the default FPN at its own input scale (full size: its output is at 1/4 resolution) on
    # the new defaults' sampler (native-scale square crops, flips only): the default-model choice
    "new-sampler-fpn-scale-1": {
        **NEW_SAMPLER,
        "arch": "fpn-mobilenetv3",
        "input_scale": 1.0,
    },
    # the same at twice the steps: about the U-Net's wall time at the baseline's steps
    "new-sampler-fpn-scale-1-steps-x2": {
        **NEW_SAMPLER,
        "arch": "fpn-mobilenetv3",
        "input_scale": 1.0,
        "steps": Times(2),
        "val_every": 200,
    },
    # the default-model table on the new recipe (issue 17, step 4), run together on one machine
    # so that their wall times compare: the default U-Net at half scale on the new sampler, the
    # dense U-Net ResNet-18 in bf16 (its AMX speed-up), the narrow FPN at full scale
    "new-sampler-unet": NEW_SAMPLER,
    "new-sampler-unet-resnet18-bf16": {
        **NEW_SAMPLER,
        "arch": "unet-resnet18",
        "precision": "bf16",
    },
    "new-sampler-fpn-lite-scale-1": {
        **NEW_SAMPLER,
        "arch": "fpn-mobilenetv3-lite",
        "input_scale": 1.0,
    },
    "plain-sampler-steps-x4": {  # fine-tuning length on the new sampler
        **PLAIN_SAMPLER,
        "steps": Times(4),
        "val_every": 400,
    },
    "class-weights-none": {"class_weights": "none"},
    "rare-share-0.3": {"rare_share": 0.3},
    "rare-share-0.6": {"rare_share": 0.6},
    "loss-jaccard": {"loss": "jaccard"},
    "loss-lovasz": {"loss": "lovasz"},
    "steps-x2": {"steps": Times(2)},  # fine-tuning length: is the curve flat yet?
    "steps-x4": {"steps": Times(4)},
    "lr-3e-3": {"lr": 3e-3},
    "lr-3e-4": {"lr": 3e-4},
    "warmup-0": {"warmup": 1},
    "input-scale-1": {"input_scale": 1.0},
    "arch-fpn": {"arch": "fpn-mobilenetv3"},
}
# The adopted recipe (the defaults: new-sampler-unet) with one more setting changed; these are
# compared with new-sampler-unet on the same folds and seeds, not with the old baseline.
ADOPTED = "new-sampler-unet"
ON_ADOPTED: dict[str, dict] = {
    "adopted-class-weights-none": {"class_weights": "none"},  # default: 1/sqrt(frequency)
    "adopted-loss-jaccard": {"loss": "jaccard"},  # the official SMS code's fine-tuning loss
    "adopted-lr-3e-3": {"lr": 3e-3},  # default 1e-3
    "adopted-lr-3e-4": {"lr": 3e-4},
    "adopted-aspect-jitter": {"crop_ratio": (3 / 4, 4 / 3)},  # aspect jitter alone, back on
    "adopted-warmup-0": {"warmup": 0},  # default: 50 warm-up steps
    "adopted-warmup-200": {"warmup": 200},
    "adopted-steps-x4": {"steps": Times(4), "val_every": 400},  # the final recipe's length
}
# A winner at the ablation's 500 steps, again at the final recipe's length (2,000 steps):
# compared with adopted-steps-x4
AT_FINAL_LENGTH: dict[str, dict] = {
    "adopted-lr-3e-3-steps-x4": {"lr": 3e-3, "steps": Times(4), "val_every": 400},
}
FACTORS |= {name: NEW_SAMPLER | change for name, change in (ON_ADOPTED | AT_FINAL_LENGTH).items()}


# Evaluation-only factors: (the factor whose runs are scored, `weedseg evaluate` settings): that
# factor's last checkpoints scored on their validation folds with the settings changed (the same
# tiles as the validation during training).
EVALUATION_FACTORS: dict[str, tuple[str, dict]] = {
    # flip test-time augmentation (3x inference time), on the old and on the new sampler's models
    "tta-flip": ("baseline", {"tta": "flip"}),
    "plain-sampler-tta-flip": ("plain-sampler", {"tta": "flip"}),
    "adopted-tta-flip": (ADOPTED, {"tta": "flip"}),
}
ALL_FACTORS = [*FACTORS, *EVALUATION_FACTORS]


# What a factor is compared with (paired by fold and seed), when not the baseline
COMPARED_WITH: dict[str, str] = (
    {name: ADOPTED for name in ON_ADOPTED}
    | {name: "adopted-steps-x4" for name in AT_FINAL_LENGTH}
    | {"adopted-tta-flip": ADOPTED}
)


def reference(factor: str) -> str:
    """The factor whose runs `factor` is compared with (paired by fold and seed)."""
    return COMPARED_WITH.get(factor, "baseline")


def factor_change(budget: Budget, factor: str) -> dict:
    """The settings `factor` changes, with values relative to the budget resolved."""
    return {
        name: round(getattr(budget, name) * value.factor) if isinstance(value, Times) else value
        for name, value in FACTORS[factor].items()
    }


def fold_splits(train: list[str], fold: int) -> tuple[list[str], list[str]]:
    """(train stems, validation stems) of `fold`: every FOLDS-th photo of a fixed shuffle."""
    order = np.random.default_rng(FOLD_SEED).permutation(sorted(train))
    held = set(order[fold::FOLDS].tolist())
    return [s for s in train if s not in held], [s for s in train if s in held]


def fold_dataset(source: Path, root: Path, fold: int) -> Path:
    """A dataset at `root` of the source's train photos only: splits train and val of `fold`
    (images and masks linked, the test split and its photos left out)."""
    from weedseg.data.format import DatasetInfo, linked_dataset

    info = DatasetInfo.load(source)
    train, val = fold_splits(info.split("train"), fold)
    if (root / "dataset.yaml").is_file():
        existing = DatasetInfo.load(root)
        if existing.splits == {"train": train, "val": val}:
            return root
    note = f"fold {fold} of {FOLDS} of the train split, no test photos"
    linked_dataset(source, root, {"train": train, "val": val}, note)
    return root


def run_one(args, budget: Budget, factor: str, fold: int, seed: int) -> dict:
    """Fine-tune one (factor, fold, seed) and return its result record."""
    from weedseg.bench.machine import cpu_model
    from weedseg.finetune.config import FinetuneConfig
    from weedseg.finetune.trainer import run_finetune

    data = fold_dataset(args.data, args.work / "folds" / f"fold{fold}", fold)
    train, val = fold_splits(_train_stems(args.data), fold)
    out = args.work / factor / f"fold{fold}-s{seed}"
    resume = (out / "checkpoints" / "last.json").is_file()
    if out.exists() and not resume:  # killed before its first checkpoint: start again
        shutil.rmtree(out)
    change = factor_change(budget, factor)
    config = FinetuneConfig(
        data=str(data), out=str(out), val_split="val", seed=seed, resume=resume,
        cache_dir=str(args.work / "photo-cache"),  # decoded once for every run
        **(asdict(budget) | change),
    )  # fmt: skip
    began = time.perf_counter()
    result = run_finetune(config, log=print)
    wall = time.perf_counter() - began
    last = result.history[-1]
    return {
        "factor": factor,
        "change": change,
        "fold": fold,
        "seed": seed,
        "train_images": len(train),
        "val_images": len(val),
        "val_last": _scores(last),
        "val_best": {"step": result.best_step, "mIoU": result.best_miou},
        "curve": [_scores(h) for h in result.history],
        "wall_s": round(wall, 1),
        "resumed": resume,
        "config": {k: v for k, v in asdict(config).items() if k not in ("data", "out")},
        "machine": f"{os.cpu_count()}-core {cpu_model()}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/recipe_ablation.py " + " ".join(sys.argv[1:]),
    }


def evaluate_one(args, budget: Budget, factor: str, fold: int, seed: int) -> dict:
    """Score the run of (fold, seed) of the factor `factor` names on its validation fold with
    `factor`'s evaluate settings; that run's result must exist."""
    from weedseg.evaluate.evaluator import EvaluateConfig, run_evaluate

    scored, settings = EVALUATION_FACTORS[factor]
    scored_result = result_path(args.out, scored, fold, seed)
    if not scored_result.is_file():
        raise SystemExit(f"{factor} scores the {scored} runs: run them first ({scored_result})")
    base = json.loads(scored_result.read_text())
    config = EvaluateConfig(
        model=str(args.work / scored / f"fold{fold}-s{seed}"), which="last",
        data=str(args.work / "folds" / f"fold{fold}"), split="val",
        out=str(args.work / factor / f"fold{fold}-s{seed}"), tile=budget.val_tile,
        force=True, progress=False, **settings,
    )  # fmt: skip
    began = time.perf_counter()
    report = run_evaluate(config)
    wall = time.perf_counter() - began
    last = _scores({"step": base["val_last"]["step"], **report["metrics"]})
    return (
        base
        | {
            "factor": factor,
            "change": settings | {"scores": scored},
            "val_last": last,
            "val_best": None,
            "curve": [last],
            "wall_s": round(wall, 1),  # the evaluation only (the training is the scored run's)
            "evaluate": {k: v for k, v in report["settings"].items() if k not in ("data", "out")},
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": "python benchmarks/recipe_ablation.py " + " ".join(sys.argv[1:]),
        }
    )


def _train_stems(source: Path) -> list[str]:
    from weedseg.data.format import DatasetInfo

    return DatasetInfo.load(source).split("train")


def _scores(entry: dict) -> dict:
    """step, mIoU and per-class IoU of one validation (a FinetuneResult.history entry)."""
    ious = {name: c["iou"] for name, c in entry["per_class"].items()}
    return {"step": entry["step"], "mIoU": entry["mIoU"], "iou": ious}


def result_path(out: Path, factor: str, fold: int, seed: int) -> Path:
    return out / f"{factor}-fold{fold}-s{seed}.json"


def run_all(args, budget: Budget, factors: list[str], folds: list[int], seeds: list[int]) -> None:
    """Every missing (factor, fold, seed), baseline first; one JSON each, written atomically."""
    from weedseg.atomic import write_atomic

    args.out.mkdir(parents=True, exist_ok=True)
    for factor in factors:
        for fold in folds:
            for seed in seeds:
                target = result_path(args.out, factor, fold, seed)
                if target.is_file():
                    print(f"[skip] {target.name} exists")
                    continue
                run = evaluate_one if factor in EVALUATION_FACTORS else run_one
                record = run(args, budget, factor, fold, seed)
                write_atomic(target, json.dumps(record, indent=1) + "\n")
                print(f"[done] {target.name}: val mIoU {record['val_last']['mIoU']:.4f}")


def _short(value):
    """A setting as the table shows it: floats to 4 significant digits (4/3 -> 1.333)."""
    if isinstance(value, list | tuple):
        return [_short(v) for v in value]
    return float(f"{value:.4g}") if isinstance(value, float) else value


def summary(out: Path) -> str:
    """Markdown: per factor, mean val scores at the last step over folds and seeds, the paired
    mIoU difference from its reference (the baseline, or the adopted recipe for the adopted-*
    factors) on the same (fold, seed), and the mean wall time."""
    rows = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    if not rows:
        return f"No results yet in {out}."
    classes = [c for c in rows[0]["val_last"]["iou"] if c != "soil"]
    by_run = {(r["factor"], r["fold"], r["seed"]): r for r in rows}
    head = ["factor", "change", "runs", "val mIoU", "vs", "d mIoU vs it (paired)"]
    head += [f"{c} IoU" for c in classes] + ["wall s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["factor"], []).append(row)
    order = [f for f in ALL_FACTORS if f in groups] + sorted(set(groups) - set(ALL_FACTORS))
    for factor in order:
        runs = groups[factor]
        versus = reference(factor)
        pairs = [(r, by_run.get((versus, r["fold"], r["seed"]))) for r in runs]
        deltas = [r["val_last"]["mIoU"] - ref["val_last"]["mIoU"] for r, ref in pairs if ref]
        # the settings it changes against `versus` (all of them when that has not run)
        theirs = groups[versus][0]["change"] if versus in groups and versus != factor else {}
        own = {k: v for k, v in runs[0]["change"].items() if theirs.get(k) != v}
        change = ", ".join(f"{k}={_short(v)}" for k, v in own.items()) or "-"
        cells = [factor, change, str(len(runs)), mean_std([r["val_last"]["mIoU"] for r in runs])]
        compared = deltas and factor != versus
        cells += [versus if compared else "-", mean_std(deltas, signed=True) if compared else "-"]
        cells += [mean_std([r["val_last"]["iou"][c] for r in runs]) for c in classes]
        cells.append(f"{statistics.mean(r['wall_s'] for r in runs):.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="converted CWFID (weedseg data convert cwfid)")
    parser.add_argument("--work", type=Path, help="run folders (outside the repository)")
    parser.add_argument("--factors", help=f"comma-separated subset of {', '.join(ALL_FACTORS)}")
    parser.add_argument("--folds", help=f"comma-separated subset of 0..{FOLDS - 1}")
    parser.add_argument("--seeds", help="comma-separated seeds (default 0,1)")
    parser.add_argument("--budget", help="YAML mapping overriding Budget fields, e.g. '{steps: 4}'")
    parser.add_argument("--out", type=Path, default=OUT, help="result JSON folder")
    parser.add_argument("--summary", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    if not args.summary:
        if args.data is None or args.work is None:
            parser.error("--data and --work are needed to run (or give --summary)")
        factors = args.factors.split(",") if args.factors else ALL_FACTORS
        unknown = set(factors) - set(ALL_FACTORS)
        if unknown:
            parser.error(f"unknown factors {sorted(unknown)}; have {', '.join(ALL_FACTORS)}")
        folds = [int(f) for f in args.folds.split(",")] if args.folds else list(range(FOLDS))
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else list(SEEDS)
        budget = Budget(**(yaml.safe_load(args.budget) if args.budget else {}))
        print(f"recipe ablation: budget {asdict(budget)}, factors {factors}, folds {folds}")
        run_all(args, budget, factors, folds, seeds)
    print(summary(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
