"""Training images/s, before and after issue 16's changes, side by side in one run.

Each arm trains for a few dozen steps through the real commands (`run_finetune`, `pretrain`)
and is timed from metrics.jsonl between a warm-up step and the last step (validation and saving
excluded). Arms:

    before         fp32, contiguous, no photo cache (the path before this change)
    channels_last  + channels_last only
    bf16           + bf16 autocast only (contiguous)
    cache          + the decoded-photo cache only (warm: filled by an earlier arm's run)
    after          every change as `auto` chooses it (precision and format measured) + cache

on CWFID photos (1296x966 PNG) and on the same photos upscaled to 8 Mpx (3264x2448 JPEG), for
fine-tuning (default model and unet-resnet18) and for pretraining (default model, each
schedule). `--compile` adds torch.compile's compile time and steady speed for the default
model's fine-tuning step, to judge a 10-minute run end to end.

    python benchmarks/train_throughput.py --data data/cwfid --work ../work/throughput
    python benchmarks/train_throughput.py --data data/cwfid --work ../work/t --steps 4 --quick

Writes benchmarks/results/train_throughput/<cpu>-<date>.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import yaml

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "train_throughput"
ARMS = {
    "before": {"precision": "fp32", "memory_format": "contiguous", "cache_gb": 0.0},
    "channels_last": {"precision": "fp32", "memory_format": "channels_last", "cache_gb": 0.0},
    "bf16": {"precision": "bf16", "memory_format": "contiguous", "cache_gb": 0.0},
    "cache": {"precision": "fp32", "memory_format": "contiguous", "cache_gb": 8.0},
    "after": {"precision": "auto", "memory_format": "auto", "cache_gb": 8.0},
}
MEGAPIXELS_8 = (2448, 3264)  # height, width of an 8-Mpx camera frame
WARMUP_STEPS = 5


def upscale_dataset(source: Path, target: Path, size: tuple[int, int] = MEGAPIXELS_8) -> Path:
    """`source`'s train photos as `size` JPEGs (quality 90) with nearest-neighbour masks."""
    if (target / "dataset.yaml").is_file():
        return target
    from weedseg.data.format import DatasetInfo
    from weedseg.imageio import read_image, read_mask, write_image

    info = DatasetInfo.load(source)
    stems = info.split("train")
    (target / "images").mkdir(parents=True, exist_ok=True)
    (target / "masks").mkdir(parents=True, exist_ok=True)
    height, width = size
    for stem in stems:
        image = cv2.resize(read_image(info.image_path(stem)), (width, height), cv2.INTER_CUBIC)
        write_image(target / "images" / f"{stem}.jpg", image, quality=90)
        mask = cv2.resize(read_mask(info.mask_path(stem)), (width, height), cv2.INTER_NEAREST)
        write_image(target / "masks" / f"{stem}.png", mask)
    manifest = yaml.safe_load((source / "dataset.yaml").read_text())
    manifest["splits"] = {"train": list(stems)}
    manifest["images"] = {stem: f"{stem}.jpg" for stem in stems}
    manifest["source"] = f"{manifest.get('source', source)}, train photos upscaled to {size}"
    (target / "dataset.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return target


def images_per_second(run: Path, batch: int, key: str) -> float:
    """Images/s between the warm-up step and the last logged step of a run's metrics."""
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    times = {line["step"]: line["time"] for line in lines if key in line}
    last = max(times)
    return (last - WARMUP_STEPS) * batch / (times[last] - times[WARMUP_STEPS])


def finetune_arm(data: Path, run: Path, arch: str, arm: dict, args, cache: Path) -> float:
    from weedseg.finetune.config import FinetuneConfig
    from weedseg.finetune.trainer import run_finetune

    config = FinetuneConfig(
        data=str(data), out=str(run), arch=arch, steps=args.steps, batch=args.batch,
        size=args.size, val_every=10**6, val_share=0.03, val_scale=0.25, log_every=1,
        workers=args.workers, cache_dir=str(cache), **arm,
    )  # fmt: skip
    run_finetune(config, log=lambda m: None)
    return images_per_second(run, args.batch, "train/loss")


def pretrain_arm(images: Path, run: Path, schedule: str, arm: dict, args, cache: Path) -> float:
    from weedseg.pretrain import PretrainConfig, pretrain

    masking = {"random": {"masking": "random"}, "paper": {"schedule": "paper"}}
    masking["online"] = {"schedule": "online", "online_refresh": 0}
    config = PretrainConfig(
        images=str(images), out=str(run), steps=args.steps, batch=args.batch, size=args.size,
        partitions=2, log_every=1, image_every=0, checkpoint_every=10**6, workers=args.workers,
        cache_dir=str(cache), **masking[schedule], **arm,
    )  # fmt: skip
    pretrain(config, log=lambda m: None)
    return images_per_second(run, args.batch, "pretrain/loss")


def compile_arm(args) -> dict:
    """torch.compile on the default model's training step: compile seconds and steady img/s."""
    import torch

    from weedseg.models import build_model, spec_from_name

    def step_times(model, steps: int) -> list[float]:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        images = torch.randn(args.batch, 3, args.size, args.size)
        images = images.contiguous(memory_format=torch.channels_last)
        labels = torch.randint(0, 3, (args.batch, args.size, args.size))
        times = []
        for _ in range(steps):
            began = time.perf_counter()
            loss = torch.nn.functional.cross_entropy(model(images).float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - began)
        return times

    result = {}
    for name, wrap in (("eager", lambda m: m), ("compiled", torch.compile)):
        torch.manual_seed(0)
        model = build_model(spec_from_name("fpn-mobilenetv3"), 3).to(
            memory_format=torch.channels_last
        )
        times = step_times(wrap(model), args.steps)
        steady = statistics.median(times[WARMUP_STEPS:])
        first = sum(times[:WARMUP_STEPS]) - WARMUP_STEPS * steady  # compile and warm-up cost
        ten_minutes = max(0.0, 600 - first) / steady * args.batch
        result[name] = {
            "images_per_s": args.batch / steady,
            "first_steps_extra_s": first,
            "images_in_10_min": ten_minutes,
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="converted CWFID (weedseg data)")
    parser.add_argument("--work", type=Path, required=True, help="run folders (outside the repo)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="default model, finetune only")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    args = parser.parse_args()

    import torch

    from weedseg.bench.machine import cpu_model
    from weedseg.precision import cpu_flags

    torch.set_num_threads(args.threads)
    big = upscale_dataset(args.data, args.work / "data-8mpx")
    datasets = {"cwfid": args.data, "8mpx": big}
    archs = ["fpn-mobilenetv3"] if args.quick else ["fpn-mobilenetv3", "unet-resnet18"]
    rows = []
    for data_name, data in datasets.items():
        cache = args.work / f"cache-{data_name}"
        shutil.rmtree(cache, ignore_errors=True)
        for arch in archs:
            for arm_name, arm in ARMS.items():
                run = args.work / f"ft-{data_name}-{arch}-{arm_name}"
                shutil.rmtree(run, ignore_errors=True)
                speed = finetune_arm(data, run, arch, arm, args, cache)
                chosen = yaml.safe_load((run / "config.yaml").read_text())["train_format"]
                rows.append(["finetune", arch, data_name, arm_name, speed, chosen])
                print(rows[-1], flush=True)
        if args.quick:
            continue
        images = data / "images"
        for schedule in ("random", "paper", "online"):
            for arm_name in ("before", "after"):
                run = args.work / f"pre-{data_name}-{schedule}-{arm_name}"
                shutil.rmtree(run, ignore_errors=True)
                speed = pretrain_arm(images, run, schedule, ARMS[arm_name], args, cache)
                chosen = yaml.safe_load((run / "config.yaml").read_text())["train_format"]
                rows.append(["pretrain", "fpn-mobilenetv3", data_name, schedule + "/" + arm_name])
                rows[-1] += [speed, chosen]
                print(rows[-1], flush=True)
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
    result = {
        "command": "python benchmarks/train_throughput.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()}-core {cpu_model()} ({platform.machine()}), no GPU",
        "cpu_flags": flags,
        "torch": torch.__version__,
        "settings": {k: getattr(args, k) for k in ("steps", "batch", "size", "workers", "threads")},
        "rows": [
            dict(zip(["task", "arch", "data", "arm", "images_per_s", "chosen"], r, strict=True))
            for r in rows
        ],
    }
    if args.compile:
        result["compile"] = compile_arm(args)
    OUT.mkdir(parents=True, exist_ok=True)
    name = cpu_model().split()[0].lower() + "-" + result["date"][:10]
    (OUT / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(result))


def markdown(result: dict) -> str:
    """One table: images/s per arm, and each arm's speed-up over `before` in the same group."""
    lines = ["| task | model | photos | arm | img/s | x before | chosen |", "|---" * 7 + "|"]
    before: dict[tuple, float] = {}
    for row in result["rows"]:
        schedule = row["arm"].split("/")[0] if "/" in row["arm"] else ""
        group = (row["task"], row["arch"], row["data"], schedule)
        if row["arm"].endswith("before"):
            before[group] = row["images_per_s"]
        ratio = row["images_per_s"] / before[group] if group in before else float("nan")
        chosen = f"{row['chosen']['precision']}, {row['chosen']['memory_format']}"
        lines.append(
            f"| {row['task']} | {row['arch']} | {row['data']} | {row['arm']} | "
            f"{row['images_per_s']:.1f} | {ratio:.2f} | {chosen} |"
        )
    if "compile" in result:
        for name, c in result["compile"].items():
            lines.append(
                f"\ntorch.compile, {name}: {c['images_per_s']:.1f} img/s steady, "
                f"{c['first_steps_extra_s']:.0f} s extra in the first steps, "
                f"{c['images_in_10_min']:.0f} images in 10 minutes"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
