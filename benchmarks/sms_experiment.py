"""The SMS experiments on real weed data: does selective masking beat random masking and scratch?

Every arm gets the same architecture, data, crop size, batch and optimizer steps; only the
pretraining differs. One JSON result per (arm, arch, labels, seed) lands in
`benchmarks/results/<experiment>/`; a run whose result exists is skipped, a killed run resumes
from its last checkpoint (run folders live under --workdir, outside the repository by default).

    python benchmarks/sms_experiment.py cwfid            # scratch, random, paper, online x 3 seeds
    python benchmarks/sms_experiment.py peanut           # 10% labels x 3 seeds, 100% x 1
    python benchmarks/sms_experiment.py cwfid-synth      # selective pretraining on synthetic fields
    python benchmarks/sms_experiment.py default-model    # architectures, selective arm, 1 seed
    python benchmarks/sms_experiment.py default-vs-peer  # the default vs the bench's peer, scratch
    python benchmarks/sms_experiment.py cwfid --summary  # mean +- std table from the result files
    python benchmarks/sms_experiment.py cwfid --budget '{input_scale: 0.5}'  # on half-size photos

Pretraining never sees a test image: its pool is the train split (symlinked into the workdir).
Fine-tuning validates on the dataset's val split, or on a fixed held-out share of train (CWFID
has none), and keeps the best checkpoint by val mIoU; the test split is used once, at the end.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

# Pretraining recipes (see ../shared/research/masked-pretraining-at-low-budget.md, section 2):
# "paper" is the published setting, "cnn" the CNN masked-image-modelling setting.
RECIPES: dict[str, dict] = {
    "paper": {"patch": 12, "mask_ratio": 0.5, "loss": "paper", "color_jitter": True},
    "cnn": {
        "patch": 32,
        "mask_ratio": 0.6,
        "loss": "masked",
        "norm_target": True,
        "color_jitter": False,
    },
}
# What each arm changes in the pretraining config (scratch: no pretraining at all).
ARMS: dict[str, dict | None] = {
    "scratch": None,
    "random": {"masking": "random"},
    "paper": {"masking": "selective", "schedule": "paper"},
    # online: difficulty rescored with the current weights every 100 steps; loss-selected share
    # of the masked patches ramps 0 -> 50% (easy-to-hard, as Hard Patches Mining)
    "online": {
        "masking": "selective",
        "schedule": "online",
        "online_refresh": 100,
        "selected_share": 0.5,
        "ramp": True,
    },
}


@dataclass
class Budget:
    """Compute per run: identical for every arm of an experiment."""

    arch: str = "unet-mobilenetv3-lite"
    size: int = 192  # training crop (pretraining and fine-tuning)
    batch: int = 8
    pretrain_steps: int = 1200
    finetune_steps: int = 600
    val_every: int = 100
    eval_tile: int = 512
    # the model works on photos shrunk by this (finetune --input-scale); crop area shares are
    # divided by its square so crops keep the same zoom range relative to that scale
    input_scale: float = 1.0

    def crop_scale(self, exp: Experiment) -> tuple[float, float]:
        """The experiment's crop area shares, at this budget's input scale."""
        low, high = (min(1.0, share / self.input_scale**2) for share in exp.crop_scale)
        return low, high


@dataclass
class Experiment:
    name: str
    data: str  # canonical labeled dataset (weedseg data convert ...)
    arms: list[str]
    seeds: list[int]
    labels: dict[str, list[int]]  # label set name -> seeds it runs with
    pretrain_pool: str = "train"  # split whose images form the unlabeled pool, or "synth"
    # Crop area share: evaluation is at full resolution, so crops keep plants near native scale
    # (a 192 px crop is 3% of a 1296x966 CWFID photo, 5% of a 960x720 Peanut one).
    crop_scale: tuple[float, float] = (0.015, 0.12)
    archs: list[str] = field(default_factory=lambda: [Budget.arch])


EXPERIMENTS = {
    "cwfid": Experiment(
        "cwfid",
        "/work/data/cwfid",
        ["scratch", "random", "paper", "online"],
        [0, 1, 2],
        {"all": [0, 1, 2]},
    ),
    "peanut": Experiment(
        "peanut",
        "/work/data/peanut",
        ["scratch", "random", "online"],
        [0, 1, 2],
        {"10pct": [0, 1, 2], "all": [0]},
        crop_scale=(0.025, 0.2),
    ),
    "cwfid-synth": Experiment(
        "cwfid-synth", "/work/data/cwfid", ["online"], [0], {"all": [0]}, pretrain_pool="synth"
    ),
    "default-model": Experiment(
        "default-model",
        "/work/data/cwfid",
        ["online"],
        [0],
        {"all": [0]},
        archs=["unet-mobilenetv3-lite", "fpn-mobilenetv3", "unet-mobilenetv3", "unet-resnet18"],
    ),
    # the default against the bench's peer network (torchvision's LR-ASPP), same recipe, from
    # scratch: the accuracy half of issue 9's "faster than the peer at equal or better mIoU"
    "default-vs-peer": Experiment(
        "default-vs-peer",
        "/work/data/cwfid",
        ["scratch"],
        [0, 1, 2],
        {"all": [0, 1, 2]},
        archs=["fpn-mobilenetv3", "lraspp-mobilenetv3", "fpn-mobilenetv3-lite"],
    ),
}


def label_subset(train: list[str], labels: str) -> list[str]:
    """The labeled train images of a label set: all, or every 10th (the same for every arm)."""
    if labels == "all":
        return train
    if labels == "10pct":
        return sorted(train)[::10]
    raise ValueError(f"unknown label set {labels!r}")


def derived_dataset(source: Path, root: Path, train: list[str]) -> Path:
    """A dataset sharing the source's images/masks but with its train split restricted."""
    from weedseg.data.format import DatasetInfo, linked_dataset

    splits = DatasetInfo.load(source).splits | {"train": train}
    linked_dataset(source, root, splits, f"train restricted to {len(train)} images")
    return root


def pretrain_pool(exp: Experiment, workdir: Path, seed: int) -> Path:
    """A folder holding only the unlabeled pretraining images (never the test split)."""
    from weedseg.data.format import DatasetInfo

    pool = workdir / exp.name / "pool"
    if exp.pretrain_pool == "synth":
        if not (pool / "dataset.yaml").is_file():
            from weedseg.data.synth.config import SynthConfig
            from weedseg.data.synth.dataset import generate_dataset

            generate_dataset(pool, SynthConfig(n=200, size=512, seed=seed))
        return pool / "images"
    if pool.is_dir():
        return pool
    info = DatasetInfo.load(exp.data)
    tmp = pool.with_name("pool.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    for stem in info.split(exp.pretrain_pool):
        src = info.image_path(stem).resolve()
        (tmp / f"{stem}{src.suffix}").symlink_to(src)
    tmp.rename(pool)
    return pool


def run_one(
    exp: Experiment,
    arm: str,
    arch: str,
    labels: str,
    seed: int,
    recipe: str,
    budget: Budget,
    workdir: Path,
) -> Path:
    """Pretrain (unless scratch), fine-tune, evaluate on test; write and return the result JSON."""
    from weedseg.data.format import DatasetInfo
    from weedseg.evaluate.evaluator import EvaluateConfig, run_evaluate
    from weedseg.finetune.config import FinetuneConfig
    from weedseg.finetune.trainer import run_finetune
    from weedseg.pretrain.config import PretrainConfig
    from weedseg.pretrain.trainer import pretrain

    budget = replace(budget, arch=arch)
    tag = f"{arm}-{recipe}-{arch}" if ARMS[arm] is not None else f"{arm}-{arch}"
    if budget.input_scale != 1.0:
        tag += f"-x{budget.input_scale:g}"
    result_path = RESULTS / exp.name / f"{tag}-{labels}-s{seed}.json"
    if result_path.is_file():
        print(f"[skip] {result_path.relative_to(REPO)} exists")
        return result_path
    run_root = workdir / exp.name / f"{tag}-s{seed}"
    timings: dict[str, float] = {}

    init = "none"
    pretrain_config = None
    if ARMS[arm] is not None:
        pretrain_config = PretrainConfig(
            images=str(pretrain_pool(exp, workdir, seed)),
            out=str(run_root / "pretrain"),
            arch=arch,
            size=budget.size,
            batch=budget.batch,
            steps=budget.pretrain_steps,
            seed=seed,
            crop_scale=budget.crop_scale(exp),
            input_scale=budget.input_scale,
            image_every=max(1, budget.pretrain_steps // 4),
            checkpoint_every=200,
            resume=(run_root / "pretrain" / "checkpoints").is_dir(),
            **RECIPES[recipe],
            **ARMS[arm],
        )
        started = time.perf_counter()
        pretrain(pretrain_config)
        timings["pretrain_s"] = round(time.perf_counter() - started, 1)
        init = str(run_root / "pretrain")

    source = Path(exp.data)
    train = label_subset(DatasetInfo.load(source).split("train"), labels)
    data = derived_dataset(source, workdir / exp.name / f"data-{labels}", train)
    finetune_config = FinetuneConfig(
        data=str(data),
        out=str(run_root / f"finetune-{labels}"),
        init=init,
        arch=arch,
        steps=budget.finetune_steps,
        batch=budget.batch,
        size=budget.size,
        crop_scale=budget.crop_scale(exp),
        input_scale=budget.input_scale,
        val_every=budget.val_every,
        seed=seed,
        resume=(run_root / f"finetune-{labels}" / "checkpoints").is_dir(),
    )
    started = time.perf_counter()
    finetuned = run_finetune(finetune_config)
    timings["finetune_s"] = round(time.perf_counter() - started, 1)

    started = time.perf_counter()
    report = run_evaluate(
        EvaluateConfig(
            model=str(finetuned.run_dir),
            data=str(source),
            split="test",
            out=str(run_root / f"eval-{labels}"),
            tile=budget.eval_tile,
            force=True,
            progress=False,
        )
    )
    timings["evaluate_s"] = round(time.perf_counter() - started, 1)

    result = {
        "experiment": exp.name,
        "arm": arm,
        "recipe": recipe if pretrain_config else None,
        "arch": arch,
        "labels": labels,
        "labeled_images": len(train),
        "seed": seed,
        "budget": asdict(budget),
        "pretrain_config": asdict(pretrain_config) if pretrain_config else None,
        "val_best_miou": finetuned.best_miou,
        "val_best_step": finetuned.best_step,
        "test": report["metrics"],
        "test_images": report["images"],
        "timings": timings,
        "machine": machine(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python", *sys.argv]),
    }
    result_path.parent.mkdir(parents=True, exist_ok=True)
    result_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"[done] {result_path.relative_to(REPO)}: test mIoU {report['metrics']['mIoU']:.4f}")
    return result_path


def machine() -> str:
    """The CPU, and the GPU when one trained the run (device auto picks it)."""
    import torch

    cpu = f"{platform.machine()} {platform.processor() or ''}".strip()
    return f"{cpu}, {torch.cuda.get_device_name()}" if torch.cuda.is_available() else cpu


def model_label(result: dict) -> str:
    """The architecture, with the input scale when the model works on shrunk photos."""
    scale = result["budget"].get("input_scale", 1.0)
    return result["arch"] if scale == 1.0 else f"{result['arch']} x{scale:g}"


def summary(exp: Experiment) -> str:
    """Markdown: per run, then mean +- std (sample std over seeds) per arm/arch/labels."""
    rows = [json.loads(p.read_text()) for p in sorted((RESULTS / exp.name).glob("*.json"))]
    if not rows:
        return f"No results yet for {exp.name}."
    classes = list(rows[0]["test"]["per_class"])
    absent = [c for c in classes if any(r["test"]["per_class"][c]["pixels"] == 0 for r in rows)]
    present = [c for c in classes if c not in absent]
    # a class with no test pixels (Peanut's crop) scores IoU 0 as soon as anything is called it:
    # the mean over the classes present in the test masks is then the figure to read
    titles = [f"mIoU ({'+'.join(present)})"] * bool(absent) + [f"{c} IoU" for c in classes]

    def iou_columns(r: dict) -> list[float]:
        """The run's per-class test IoUs, led by the present-class mean when a class is absent."""
        ious = {c: r["test"]["per_class"][c]["iou"] for c in classes}
        present_mean = [statistics.mean(ious[c] for c in present)] * bool(absent)
        return present_mean + [ious[c] for c in classes]

    head = "| arm | recipe | arch | labels | seed | test mIoU | " + " | ".join(titles)
    lines = [head + " | val mIoU | pretrain s | finetune s |", "|" + "---|" * (len(titles) + 9)]
    for r in rows:
        ious = " | ".join(f"{v:.4f}" for v in iou_columns(r))
        lines.append(
            f"| {r['arm']} | {r['recipe'] or '-'} | {model_label(r)} | {r['labels']} | {r['seed']} "
            f"| {r['test']['mIoU']:.4f} | {ious} | {r['val_best_miou']:.4f} "
            f"| {r['timings'].get('pretrain_s', 0):.0f} | {r['timings']['finetune_s']:.0f} |"
        )
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["arm"], r["recipe"], model_label(r), r["labels"]), []).append(r)

    def mean_std(values: list[float]) -> str:
        if len(values) < 2:
            return f"{values[0]:.4f}"
        return f"{statistics.mean(values):.4f} +- {statistics.stdev(values):.4f}"

    lines += [
        "",
        "| arm | recipe | arch | labels | seeds | test mIoU | "
        + " | ".join(titles)
        + " | val mIoU |",
        "|" + "---|" * (len(titles) + 7),
    ]
    for (arm, recipe, arch, labels), group in groups.items():
        columns = zip(*(iou_columns(r) for r in group), strict=True)  # seeds per column
        lines.append(
            f"| {arm} | {recipe or '-'} | {arch} | {labels} | {len(group)} "
            f"| {mean_std([r['test']['mIoU'] for r in group])} | "
            + " | ".join(mean_std(list(values)) for values in columns)
            + f" | {mean_std([r['val_best_miou'] for r in group])} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS))
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="cnn")
    parser.add_argument("--arms", help="comma-separated subset of the experiment's arms")
    parser.add_argument("--seeds", help="comma-separated subset of seeds")
    parser.add_argument("--archs", help="comma-separated subset of the experiment's architectures")
    parser.add_argument("--data", help="override the dataset path")
    parser.add_argument("--workdir", default="/work/experiments", help="run folders go here")
    parser.add_argument("--budget", help="YAML/JSON mapping overriding Budget fields")
    parser.add_argument("--summary", action="store_true", help="print the results table only")
    args = parser.parse_args()

    exp = EXPERIMENTS[args.experiment]
    if args.data:
        exp = replace(exp, data=args.data)
    if args.summary:
        print(summary(exp))
        return 0
    budget = Budget(**(yaml.safe_load(args.budget) if args.budget else {}))
    arms = args.arms.split(",") if args.arms else exp.arms
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else exp.seeds
    archs = args.archs.split(",") if args.archs else exp.archs
    print(f"experiment {exp.name}: budget {asdict(budget)}, recipe {args.recipe}")
    for labels, label_seeds in exp.labels.items():
        for seed in (s for s in seeds if s in label_seeds):
            for arch in archs:
                for arm in arms:
                    run_one(exp, arm, arch, labels, seed, args.recipe, budget, Path(args.workdir))
    print(summary(exp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
