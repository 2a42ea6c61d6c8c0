"""The chosen fine-tuning recipe, trained on every labelled photo and scored once (issue 17).

Each (dataset name, seed) is one `weedseg finetune --final` run from scratch (all train photos, no
validation, the last step kept), then `weedseg evaluate` on each split asked for (full
resolution, tiled like the runtime). One JSON per (name, seed, split) lands in
benchmarks/results/recipe_final/ with the run's config.yaml beside it; `--summary` prints the
per-seed rows and mean +- std per (name, split). A finished run or evaluation is not run again
(its results are recorded from its folders), a killed run resumes.

    python benchmarks/recipe_final.py run --data data/cwfid --name cwfid --seeds 0,1,2 \\
        --steps 2000 --splits test --work ../work/recipe-final
    python benchmarks/recipe_final.py run --data data/peanut-10pct --name peanut-10pct \\
        --seeds 0 --steps 1200 --splits val,test --work ../work/recipe-final
    python benchmarks/recipe_final.py summary

Training seconds are read from the run's metrics.jsonl (logged step 10 to the last step), so
they include any pause of the process; the README says which runs were paused.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from results_md import mean_std

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "recipe_final"


def run_one(args, seed: int) -> None:
    """Train (or resume) the run of `seed`, evaluate it on each split, record each result."""
    run = args.work / f"{args.name}-s{seed}"
    model = ["--arch", args.arch, "--input-scale", str(args.input_scale)]
    train = [sys.executable, "-m", "weedseg", "finetune", "--data", str(args.data)]
    train += ["--out", str(run), "--init", "none", *model, "--size", str(args.size)]
    train += ["--steps", str(args.steps), "--final", "--seed", str(seed)]
    train += ["--precision", args.precision]
    if args.cache_dir:
        train += ["--cache-dir", str(args.cache_dir)]
    for split in args.splits:
        evaluation = Path(f"{run}-eval-{split}")
        if not (evaluation / "report.json").is_file():
            if not _finished(run, args.steps):
                resume = ["--resume"] if (run / "checkpoints" / "last.json").is_file() else []
                subprocess.run([*train, *resume], check=True)
            score = [sys.executable, "-m", "weedseg", "evaluate", "--model", str(run)]
            score += ["--data", str(args.data), "--split", split, "--out", str(evaluation)]
            subprocess.run(score, check=True)
        record(args.name, seed, split, run, evaluation, args.machine)


def _finished(run: Path, steps: int) -> bool:
    metrics = run / "metrics.jsonl"
    if not metrics.is_file():
        return False
    lines = metrics.read_text().splitlines()
    return bool(lines) and json.loads(lines[-1])["step"] >= steps


def record(name: str, seed: int, split: str, run: Path, evaluation: Path, machine: str) -> dict:
    """One result JSON (and the run's config.yaml) from a finished run and its evaluation."""
    from weedseg.atomic import write_atomic

    report = json.loads((evaluation / "report.json").read_text())
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    per_class = report["metrics"]["per_class"]
    present = [c for c, v in per_class.items() if v["pixels"] > 0]
    result = {
        "name": name,
        "seed": seed,
        "split": split,
        "steps": lines[-1]["step"],
        "mIoU": report["metrics"]["mIoU"],
        # the mean over the classes the split's masks hold (Peanut test has no crop pixel)
        "mIoU_present": statistics.mean(per_class[c]["iou"] for c in present),
        "present": present,
        "iou": {c: v["iou"] for c, v in per_class.items()},
        "train_s": round(lines[-1]["time"] - lines[0]["time"], 1),  # logged step 10 -> last
        "train_date": datetime.fromtimestamp(lines[0]["time"], UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "evaluate": {k: v for k, v in report["settings"].items() if k not in ("out",)},
    }
    OUT.mkdir(parents=True, exist_ok=True)
    write_atomic(OUT / f"{name}-s{seed}-{split}.json", json.dumps(result, indent=1) + "\n")
    shutil.copyfile(run / "config.yaml", OUT / f"{name}-s{seed}-config.yaml")
    return result


def summary(out: Path = OUT) -> str:
    """Markdown: every run with its machine, then mean +- std (sample std over seeds) per (name,
    split). Training seconds compare only between runs on the same machine."""
    rows = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    if not rows:
        return f"No results yet in {out}."
    classes = list(rows[0]["iou"])
    head = ["run", "split", "seeds", "steps", "mIoU", "mIoU (classes present)"]
    head += [f"{c} IoU" for c in classes] + ["train s", "machine"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["name"], r["split"]), []).append(r)
    for (name, split), runs in groups.items():
        runs.sort(key=lambda r: r["seed"])
        for r in runs:
            cells = [name, split, str(r["seed"]), str(r["steps"]), f"{r['mIoU']:.4f}"]
            cells += [f"{r['mIoU_present']:.4f}"] + [f"{r['iou'][c]:.4f}" for c in classes]
            cells += [f"{r['train_s']:.0f}", r["machine"]]
            lines.append("| " + " | ".join(cells) + " |")
        if len(runs) > 1:
            cells = [f"**{name}**", split, f"{len(runs)} (mean +- std)", ""]
            cells += [mean_std([r["mIoU"] for r in runs])]
            cells += [mean_std([r["mIoU_present"] for r in runs])]
            cells += [mean_std([r["iou"][c] for r in runs]) for c in classes]
            lines.append("| " + " | ".join(cells + ["", ""]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train and evaluate the missing seeds")
    run.add_argument("--data", type=Path, required=True, help="converted dataset")
    run.add_argument("--name", required=True, help="result name, e.g. cwfid or peanut-10pct")
    run.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    run.add_argument("--splits", default="test", help="comma-separated splits to score")
    run.add_argument("--work", type=Path, required=True, help="folder for the run folders")
    run.add_argument("--arch", default="unet-mobilenetv3")
    run.add_argument("--input-scale", type=float, default=0.5)
    run.add_argument("--size", type=int, default=192)
    run.add_argument("--steps", type=int, default=2000)
    run.add_argument(
        "--precision", default="fp32", choices=("fp32", "bf16"), help="pinned training precision"
    )
    run.add_argument("--cache-dir", type=Path, help="a photo cache shared between runs")
    run.add_argument("--machine", default="", help="the machine, for the record")
    sub.add_parser("summary", help="print the tables")
    args = parser.parse_args()
    if args.command == "summary":
        print(summary())
        return
    args.splits = args.splits.split(",")
    for seed in (int(s) for s in args.seeds.split(",")):
        run_one(args, seed)
    print(summary())


if __name__ == "__main__":
    main()
