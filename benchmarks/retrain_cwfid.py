"""Retraining benchmark on real data (issue 8): a CWFID model adapted to a Peanut farm.

Base: a segmenter fine-tuned on CWFID (carrots, Germany), or `--base` if you have one. Farm:
the Peanut dataset (peanuts, Vietnam): its train photos are the unlabeled pool, `--labels N`
evenly spaced train images are the farm's labels. `weedseg retrain` then runs SMS from the base
on the pool, compares base and new by cross-validation on the N labels, fine-tunes the shipped
model on all N and exports it. This script then scores the base and the shipped bundle on
Peanut's val split, which retrain never saw (does the cross-validation estimate hold?), times
each stage and writes result.json plus the markdown section for benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/retrain_cwfid.py --out runs/bench/retrain_cwfid \
        --budget small --labels 20 --base-steps 1000 --scale 0.5

`--scale` resizes both datasets once (images area, masks nearest) to save time on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import cv2
import numpy as np

from weedseg.atomic import atomic_dir, write_atomic
from weedseg.data.format import DatasetInfo
from weedseg.imageio import read_image, read_mask, write_image

DATA = Path("/work/data")


def subset(src: DatasetInfo, dst: Path, splits: dict[str, list[str]], scale: float) -> DatasetInfo:
    """A dataset holding `splits` of `src` (hard links, or resized copies when scale != 1);
    kept from an earlier run when it holds the same splits."""
    if (dst / "dataset.yaml").is_file() and DatasetInfo.load(dst).splits == splits:
        return DatasetInfo.load(dst)
    stems = sorted({s for members in splits.values() for s in members})
    with atomic_dir(dst, force=True) as tmp:
        for stem in stems:
            image_out = tmp / "images" / src.images[stem]
            mask_out = tmp / "masks" / f"{stem}.png"
            if scale == 1.0:
                image_out.parent.mkdir(parents=True, exist_ok=True)
                mask_out.parent.mkdir(parents=True, exist_ok=True)
                os.link(src.image_path(stem), image_out)
                os.link(src.mask_path(stem), mask_out)
                continue
            image, mask = read_image(src.image_path(stem)), read_mask(src.mask_path(stem))
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            write_image(image_out.with_suffix(".png"), cv2.resize(image, size, cv2.INTER_AREA))
            write_image(mask_out, cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST))
        images = {
            s: src.images[s] if scale == 1.0 else str(Path(src.images[s]).with_suffix(".png"))
            for s in stems
        }
        DatasetInfo(tmp, src.classes, splits, images, f"subset of {src.root} x{scale}").save()
    return DatasetInfo.load(dst)


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The training flags both CWFID experiments share (model, crops, batch, photo scale)."""
    parser.add_argument("--arch", default="unet-mobilenetv3-lite")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument(
        "--crop-scale", type=float, nargs=2, help="MIN MAX crop area share (default: native)"
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="auto")


def crop_flag(crop_scale: list[float] | None) -> str:
    """The `--crop-scale` part of the command line shown in RESULTS.md ("" for native)."""
    return f" --crop-scale {crop_scale[0]} {crop_scale[1]}" if crop_scale else ""


def evenly(stems: list[str], n: int) -> list[str]:
    if n >= len(stems):
        return list(stems)
    return [stems[int(i)] for i in np.linspace(0, len(stems) - 1, n).round()]


def train_base(args, cwfid: DatasetInfo, out: Path) -> Path:
    """A CWFID segmenter (validated once, at the end, on the CWFID test split)."""
    from weedseg.finetune.config import FinetuneConfig
    from weedseg.finetune.trainer import run_finetune

    run = out / "base"
    if (run / "checkpoints" / "best.json").is_file():
        return run
    shutil.rmtree(run, ignore_errors=True)
    run_finetune(
        FinetuneConfig(
            data=str(cwfid.root), out=str(run), init=args.base_init, arch=args.arch,
            steps=args.base_steps, batch=args.batch, size=args.size, val_split="test",
            val_every=args.base_steps, workers=args.workers, device=args.device, seed=args.seed,
        )
    )  # fmt: skip
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench/retrain_cwfid"))
    parser.add_argument("--cwfid", type=Path, default=DATA / "cwfid")
    parser.add_argument("--farm", type=Path, default=DATA / "peanut")
    parser.add_argument("--base", help="existing base (run, bundle or registry version)")
    parser.add_argument("--base-init", default="none", help="pretraining run for the base")
    parser.add_argument("--base-steps", type=int, default=1000)
    parser.add_argument("--labels", type=int, default=20, help="labeled farm images")
    parser.add_argument("--photos", type=int, default=280, help="unlabeled farm photos")
    parser.add_argument("--budget", default="small")
    parser.add_argument("--pretrain-steps", type=int)
    parser.add_argument("--finetune-steps", type=int)
    add_training_arguments(parser)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from weedseg.bench.machine import cpu_model
    from weedseg.retrain.base_model import resolve_base
    from weedseg.retrain.config import RetrainConfig
    from weedseg.retrain.scoring import Segmenter
    from weedseg.retrain.workflow import retrain

    args.out.mkdir(parents=True, exist_ok=True)
    cwfid_src, farm_src = DatasetInfo.load(args.cwfid), DatasetInfo.load(args.farm)
    cwfid = subset(cwfid_src, args.out / "cwfid", cwfid_src.splits, args.scale)
    labeled = evenly(farm_src.split("train"), args.labels)
    farm = subset(farm_src, args.out / "farm", {"train": labeled}, args.scale)
    farm_val = subset(farm_src, args.out / "farm_val", {"val": farm_src.split("val")}, args.scale)
    pool = subset(
        farm_src, args.out / "pool", {"train": evenly(farm_src.split("train"), args.photos)},
        args.scale,
    )  # fmt: skip
    started = time.perf_counter()
    base = Path(args.base) if args.base else train_base(args, cwfid, args.out)
    base_seconds = time.perf_counter() - started
    started = time.perf_counter()
    resume = (args.out / "retrain" / "retrain.yaml").is_file()
    result = retrain(
        RetrainConfig(
            images=str(pool.root / "images"), labels=str(farm.root), base=str(base),
            out=str(args.out / "retrain"), budget=args.budget, pretrain_steps=args.pretrain_steps,
            finetune_steps=args.finetune_steps, size=args.size, crop_scale=args.crop_scale,
            batch=args.batch,
            tile=args.tile, export_size=min(args.tile, 512), workers=args.workers,
            device=args.device, seed=args.seed, resume=resume,
        )
    )  # fmt: skip
    report = result.report
    overlap = report["config"]["overlap"]
    held_out = {
        who: model.score(farm_val, farm_val.split("val")).to_dict(farm_val.class_names)
        for who, model in (
            ("base", Segmenter.from_base(resolve_base(str(base)), args.tile, overlap, args.device)),
            ("shipped", Segmenter.from_bundle(result.bundle, args.tile, overlap)),
        )
    }
    summary = {
        "machine": f"{os.cpu_count()}-core {cpu_model()}, device {args.device}",
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "base": str(base),
        "base_training_s": round(base_seconds, 1) if not args.base else None,
        "farm_labels": len(labeled),
        "farm_photos": len(pool.images),
        "farm_val": len(farm_val.split("val")),
        "comparison": report["comparison"]["method"],
        "scale": args.scale,
        "budget": report["budget"],
        "stage_seconds": report["seconds"],
        "retrain_s": round(time.perf_counter() - started, 1),
        "cv_scores": {who: report[who]["scores"]["mIoU"] for who in ("base", "new")},
        "base_scores": {k: held_out["base"][k] for k in ("mIoU", "aAcc")},
        "new_scores": {k: held_out["shipped"][k] for k in ("mIoU", "aAcc")},
        "per_class": {
            name: {"base": c["iou"], "new": held_out["shipped"]["per_class"][name]["iou"]}
            for name, c in held_out["base"]["per_class"].items()
        },
    }
    write_atomic(args.out / "result.json", json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    print(markdown(summary, args))


def markdown(s: dict, args) -> str:
    rows = "\n".join(
        f"| {name} | {v['base']:.4f} | {v['new']:.4f} |" for name, v in s["per_class"].items()
    )
    return (
        f"\n## Retraining: CWFID base adapted to a Peanut farm\n\n"
        f"`.venv/bin/python benchmarks/retrain_cwfid.py --budget {args.budget} --labels "
        f"{args.labels} --photos {args.photos} --scale {args.scale} --size {args.size}"
        f"{crop_flag(args.crop_scale)}"
        + (f" --base {args.base}" if args.base else "")
        + f"` on {s['machine']}, "
        f"{s['date']}.\n\nBudget: {s['budget']['pretrain_steps']} SMS steps on "
        f"{s['farm_photos']} farm photos, {s['budget']['finetunes']} fine-tunes of "
        f"{s['budget']['finetune_steps']} steps ({s['comparison']} cross-validation on the "
        f"{s['farm_labels']} labeled farm images, then the shipped model on all of them).\n\n"
        f"Cross-validation mIoU: base {s['cv_scores']['base']:.4f}, new "
        f"{s['cv_scores']['new']:.4f}. On Peanut val ({s['farm_val']} images, never seen by "
        f"retrain), base vs shipped bundle:\n\n"
        f"| class | base IoU | new IoU |\n|---|---|---|\n{rows}\n"
        f"| **mIoU** | {s['base_scores']['mIoU']:.4f} | {s['new_scores']['mIoU']:.4f} |\n\n"
        f"Time per stage (s): {s['stage_seconds']}; whole retrain {s['retrain_s']} s.\n"
    )


if __name__ == "__main__":
    main()
