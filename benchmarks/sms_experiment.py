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
    python benchmarks/sms_experiment.py decide-cwfid     # issue 18: arms x pretraining budgets
    python benchmarks/sms_experiment.py decide-cwfid --plot  # test mIoU against budget (PNG)

Pretraining never sees a test image: its pool is the train split (symlinked into the workdir).
Fine-tuning validates on the dataset's val split, or on a fixed held-out share of train (CWFID
has none), and keeps the best checkpoint by val mIoU; the test split is used once, at the end.
The decide-* experiments (issue 18) fine-tune with issue 17's recipe instead: the default model
at its input scale, FinetuneConfig's own crop sampler, every labelled photo, the last step kept.
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
from results_md import mean_std

from weedseg.defaults import DEFAULT_ARCH, DEFAULT_INPUT_SCALE

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
    # fine-tuning crops: "area" = the experiment's crop area shares (the first experiments);
    # "recipe" = FinetuneConfig's own sampler (issue 17: native zoom 1, square, no jitter)
    finetune_sampler: str = "area"
    # fine-tune on every labelled photo and keep the last step (issue 17's --final), instead of
    # keeping the best checkpoint on a held-out share
    final: bool = False
    workers: int = 2  # data loading processes, pretraining and fine-tuning

    def __post_init__(self) -> None:
        if self.finetune_sampler not in ("area", "recipe"):
            raise ValueError(f"finetune_sampler must be area or recipe: {self.finetune_sampler!r}")

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
    budget: dict = field(default_factory=dict)  # the Budget fields this experiment changes
    # pretraining steps to sweep (each arm but scratch runs at each); empty: the budget's own
    pretrain_budgets: list[int] = field(default_factory=list)


# issue 17's fine-tuning recipe (benchmarks/recipe_final.py): the default model at its input
# scale, FinetuneConfig's sampler, 2,000 steps (the validation curve is flat from about 800),
# trained on every labelled photo, the last step kept
RECIPE_17 = {
    "arch": DEFAULT_ARCH,
    "input_scale": DEFAULT_INPUT_SCALE,
    "finetune_steps": 2000,
    "finetune_sampler": "recipe",
    "final": True,
}


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
    # issue 18, steps 1-2: the default model, every arm at 1x (1,200 steps) and 4x pretraining
    "decide-cwfid": Experiment(
        "decide-cwfid",
        "/work/data/cwfid",
        ["scratch", "random", "paper", "online"],
        [0, 1, 2],
        {"all": [0, 1, 2]},
        archs=[DEFAULT_ARCH],
        budget=RECIPE_17,
        pretrain_budgets=[1200, 4800],
    ),
    # issue 18, step 3: Peanut at 10% and 100% labels, 3 seeds each
    "decide-peanut": Experiment(
        "decide-peanut",
        "/work/data/peanut",
        ["scratch", "random", "online"],
        [0, 1, 2],
        {"10pct": [0, 1, 2], "all": [0, 1, 2]},
        crop_scale=(0.025, 0.2),
        archs=[DEFAULT_ARCH],
        budget=RECIPE_17,
        pretrain_budgets=[1200],
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
    if ARMS[arm] is not None and budget.pretrain_steps != Budget.pretrain_steps:
        tag += f"-p{budget.pretrain_steps}"  # a pretraining budget other than the 1x one
    result_path = RESULTS / exp.name / f"{tag}-{labels}-s{seed}.json"
    if result_path.is_file():
        print(f"[skip] {result_path} exists")
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
            workers=budget.workers,
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
        crop_scale=budget.crop_scale(exp) if budget.finetune_sampler == "area" else None,
        input_scale=budget.input_scale,
        val_every=budget.val_every,
        final=budget.final,
        workers=budget.workers,
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
    print(f"[done] {result_path}: test mIoU {report['metrics']['mIoU']:.4f}")
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


def pretrained_steps(result: dict) -> int:
    """The run's pretraining steps (0 for scratch)."""
    return 0 if result["arm"] == "scratch" else int(result["budget"]["pretrain_steps"])


def load_results(exp: Experiment) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((RESULTS / exp.name).glob("*.json"))]


def present_classes(rows: list[dict]) -> tuple[list[str], list[str]]:
    """(classes with test pixels in every run, classes without): Peanut's test has no crop."""
    classes = list(rows[0]["test"]["per_class"])
    absent = [c for c in classes if any(r["test"]["per_class"][c]["pixels"] == 0 for r in rows)]
    return [c for c in classes if c not in absent], absent


def headline(result: dict, present: list[str]) -> float:
    """The figure to read: mIoU over the classes present in the test masks."""
    return statistics.mean(result["test"]["per_class"][c]["iou"] for c in present)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def summary(exp: Experiment) -> str:
    """Markdown: per run, then mean +- std (sample std over seeds) per arm/arch/labels/budget."""
    rows = load_results(exp)
    if not rows:
        return f"No results yet for {exp.name}."
    classes = list(rows[0]["test"]["per_class"])
    present, absent = present_classes(rows)
    # a class with no test pixels (Peanut's crop) scores IoU 0 as soon as anything is called it:
    # the mean over the classes present in the test masks is then the figure to read
    titles = [f"mIoU ({'+'.join(present)})"] * bool(absent) + [f"{c} IoU" for c in classes]

    def iou_columns(r: dict) -> list[float]:
        """The run's per-class test IoUs, led by the present-class mean when a class is absent."""
        ious = [r["test"]["per_class"][c]["iou"] for c in classes]
        return [headline(r, present)] * bool(absent) + ious

    head = "| arm | recipe | arch | labels | pretrain steps | seed | test mIoU | " + " | ".join(
        titles
    )
    lines = [head + " | val mIoU | pretrain s | finetune s |", "|" + "---|" * (len(titles) + 10)]
    for r in rows:
        ious = " | ".join(f"{v:.4f}" for v in iou_columns(r))
        lines.append(
            f"| {r['arm']} | {r['recipe'] or '-'} | {model_label(r)} | {r['labels']} "
            f"| {pretrained_steps(r)} | {r['seed']} | {r['test']['mIoU']:.4f} | {ious} "
            f"| {_number(r['val_best_miou'])} "
            f"| {r['timings'].get('pretrain_s', 0):.0f} | {r['timings']['finetune_s']:.0f} |"
        )
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        key = (r["arm"], r["recipe"], model_label(r), r["labels"], pretrained_steps(r))
        groups.setdefault(key, []).append(r)

    lines += [
        "",
        "| arm | recipe | arch | labels | pretrain steps | seeds | test mIoU | "
        + " | ".join(titles)
        + " | val mIoU |",
        "|" + "---|" * (len(titles) + 8),
    ]

    def order(key: tuple) -> tuple:  # by label set, then arm, then pretraining budget
        arm, recipe, arch, labels, steps = key
        return labels, list(ARMS).index(arm), steps, recipe or "", arch

    for (arm, recipe, arch, labels, steps), group in sorted(
        groups.items(), key=lambda item: order(item[0])
    ):
        columns = zip(*(iou_columns(r) for r in group), strict=True)  # seeds per column
        lines.append(
            f"| {arm} | {recipe or '-'} | {arch} | {labels} | {steps} | {len(group)} "
            f"| {mean_std([r['test']['mIoU'] for r in group])} | "
            + " | ".join(mean_std(list(values)) for values in columns)
            + f" | {mean_std([r['val_best_miou'] for r in group])} |"
        )
    return "\n".join(lines)


def plot_budgets(exp: Experiment, out: Path) -> Path:
    """One PNG: test mIoU (classes present) against pretraining steps, a line per arm (scratch
    flat across), the seeds' mean with their min-max shaded; one panel per label set."""
    from matplotlib.figure import Figure

    rows = load_results(exp)
    if not rows:
        raise SystemExit(f"no results yet for {exp.name}")
    present, _ = present_classes(rows)
    label_sets = sorted({r["labels"] for r in rows})
    budgets = sorted({pretrained_steps(r) for r in rows if r["arm"] != "scratch"})
    figure = Figure(figsize=(5.5 * len(label_sets), 4.2), layout="constrained")
    for axes, labels in zip(
        figure.subplots(1, len(label_sets), squeeze=False)[0], label_sets, strict=True
    ):
        for arm in ARMS:
            runs = [r for r in rows if r["labels"] == labels and r["arm"] == arm]
            if not runs:
                continue
            by_steps: dict[int, list[float]] = {}
            for r in runs:
                by_steps.setdefault(pretrained_steps(r), []).append(headline(r, present))
            if arm == "scratch":  # no pretraining: the same runs at every budget
                by_steps = {steps: by_steps[0] for steps in budgets or [0]}
            steps = sorted(by_steps)
            mean = [statistics.mean(by_steps[s]) for s in steps]
            line = axes.plot(steps, mean, marker="o", label=f"{arm} ({len(runs)} runs)")[0]
            low = [min(by_steps[s]) for s in steps]
            high = [max(by_steps[s]) for s in steps]
            axes.fill_between(steps, low, high, color=line.get_color(), alpha=0.2)
        axes.set_title(f"{exp.name}, {labels} labels")
        axes.set_xlabel("pretraining steps")
        axes.set_ylabel(f"test mIoU ({'+'.join(present)})")
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    return out


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
    parser.add_argument(
        "--plot", action="store_true", help="write RESULTS/<experiment>/budget.png only"
    )
    parser.add_argument(
        "--pretrain-budgets", help="comma-separated pretraining steps (the experiment's sweep)"
    )
    args = parser.parse_args()

    exp = EXPERIMENTS[args.experiment]
    if args.data:
        exp = replace(exp, data=args.data)
    if args.summary:
        print(summary(exp))
        return 0
    if args.plot:
        print(plot_budgets(exp, RESULTS / exp.name / "budget.png"))
        return 0
    budget = Budget(**(exp.budget | (yaml.safe_load(args.budget) if args.budget else {})))
    arms = args.arms.split(",") if args.arms else exp.arms
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else exp.seeds
    archs = args.archs.split(",") if args.archs else exp.archs
    if args.pretrain_budgets:
        sweep = [int(s) for s in args.pretrain_budgets.split(",")]
    else:
        sweep = exp.pretrain_budgets or [budget.pretrain_steps]
    print(f"experiment {exp.name}: budget {asdict(budget)}, recipe {args.recipe}")
    for steps in sweep:  # the smaller budgets first: a whole table before the larger runs
        swept = replace(budget, pretrain_steps=steps)
        for labels, label_seeds in exp.labels.items():
            for seed in (s for s in seeds if s in label_seeds):
                for arch in archs:
                    for arm in arms:  # scratch's result is shared by every budget: skipped
                        run_one(
                            exp, arm, arch, labels, seed, args.recipe, swept, Path(args.workdir)
                        )
    print(summary(exp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
