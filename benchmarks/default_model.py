"""The default-model table (issue 4, item 4): compact architectures by cost, speed and accuracy.

For each candidate preset: parameters, GFLOP at 512x512, ONNX Runtime FP32 CPU latency at
512x512 batch 1 (measured by `weedseg.bench` on this machine, all cores, untrained weights: speed
does not depend on them), and the CWFID test mIoU from the experiment's result files
(`benchmarks/sms_experiment.py default-model` writes them to benchmarks/results/default-model/;
"not yet measured" until it has). The peer (torchvision LRASPP-MobileNetV3) gets the same row.
Picks the fastest candidate within 1 mIoU point of the most accurate one once mIoU is known.

    .venv/bin/python benchmarks/default_model.py --runs 20 --out runs/default_model
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

from weedseg.atomic import write_atomic
from weedseg.bench import BenchConfig, run_bench
from weedseg.bench.report import machine_line

REPO = Path(__file__).resolve().parents[1]
CANDIDATES = ["unet-mobilenetv3-lite", "fpn-mobilenetv3", "unet-mobilenetv3", "unet-resnet18"]
MIOU_MARGIN = 0.01  # "within 1 mIoU point of the most accurate candidate"
SIZE = 512


def measured_miou(results: Path, preset: str) -> dict | None:
    """Mean test mIoU and crop IoU over the experiment's result files for `preset` (or None)."""
    runs = []
    for path in sorted(results.glob("*.json")):
        result = json.loads(path.read_text(encoding="utf-8"))
        if result.get("arch") == preset and "test" in result:
            runs.append(result["test"])
    if not runs:
        return None
    crop = [r["per_class"]["crop"]["iou"] for r in runs if "crop" in r.get("per_class", {})]
    return {
        "miou": statistics.mean(r["mIoU"] for r in runs),
        "crop_iou": statistics.mean(crop) if crop else None,
        "runs": len(runs),
    }


def table_rows(bench: dict, results: Path) -> list[dict]:
    """One row per subject: cost from the bench subjects, latency from its ort row."""
    latency = {
        r["model"]: r for r in bench["rows"] if r["backend"] == "ort" and r["status"] == "ok"
    }
    rows = []
    for subject in bench["subjects"]:
        ort_row = latency.get(subject["name"], {})
        rows.append(
            {
                "model": subject["name"],
                "role": subject["role"],
                "params_m": subject["params_m"],
                "gflop_512": subject["gflop_per_image"][str(SIZE)],
                "ort_fp32_median_ms": ort_row.get("median_ms"),
                "ort_fp32_p90_ms": ort_row.get("p90_ms"),
                "percent_of_fp32_peak": ort_row.get("percent_of_fp32_peak"),
                "cwfid": measured_miou(results, subject["name"])
                if subject["role"] == "ours"
                else None,
            }
        )
    return rows


def pick_default(rows: list[dict]) -> str:
    """The fastest of ours within 1 mIoU point of the most accurate, or why none is picked yet."""
    scored = [r for r in rows if r["role"] == "ours" and r["cwfid"] and r["ort_fp32_median_ms"]]
    if not scored:
        return "no pick yet: CWFID mIoU not yet measured for any candidate"
    best = max(r["cwfid"]["miou"] for r in scored)
    close = [r for r in scored if r["cwfid"]["miou"] >= best - MIOU_MARGIN]
    fastest = min(close, key=lambda r: r["ort_fp32_median_ms"])
    return (
        f"default: {fastest['model']} (fastest within {MIOU_MARGIN * 100:.0f} mIoU point of the "
        f"best, {best:.4f}; {len(scored)} of {sum(r['role'] == 'ours' for r in rows)} "
        "candidates scored)"
    )


def _accuracy(row: dict) -> str:
    if row["role"] != "ours":
        return "not trained here"
    if row["cwfid"] is None:
        return "not yet measured"
    crop = row["cwfid"]["crop_iou"]
    crop_text = f" (crop {crop:.4f})" if crop is not None else ""
    return f"{row['cwfid']['miou']:.4f}{crop_text}, {row['cwfid']['runs']} run(s)"


def markdown(rows: list[dict], bench: dict, command: str) -> str:
    lines = [
        f"Command: `{command}`",
        "",
        f"Machine: {machine_line(bench)}; FP32 peak {bench['fp32_peak']['peak_gflops']} GFLOP/s "
        f"(float32 GEMM, PyTorch/NumPy).",
        "",
        "| model | params (M) | GFLOP @512 | ORT FP32 512x512 b1 median / p90 ms | % FP32 peak "
        "| CWFID test mIoU |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        latency = (
            f"{r['ort_fp32_median_ms']:.1f} / {r['ort_fp32_p90_ms']:.1f}"
            if r["ort_fp32_median_ms"]
            else "-"
        )
        name = r["model"] + (" (peer)" if r["role"] == "peer" else "")
        lines.append(
            f"| {name} | {r['params_m']:.2f} | {r['gflop_512']:.2f} | {latency} "
            f"| {r['percent_of_fp32_peak'] or '-'} | {_accuracy(r)} |"
        )
    lines += ["", pick_default(rows), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default=",".join(CANDIDATES), help="comma-separated presets")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per model")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--peer", default="lraspp", help="peer row (lraspp or none)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads")
    parser.add_argument(
        "--results",
        default=str(REPO / "benchmarks" / "results" / "default-model"),
        help="experiment result files (JSON per run) with the CWFID test mIoU",
    )
    parser.add_argument("--out", default="runs/default_model")
    args = parser.parse_args()

    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    config = BenchConfig(
        models=[f"preset:{p}" for p in presets],
        sizes=[SIZE],
        batches=[1],
        backends=["ort"],
        peer=None if args.peer == "none" else args.peer,
        runs=args.runs,
        warmup=args.warmup,
        threads=args.threads,
        interleave_models=True,  # every model sees the same load: this table compares models
        out=args.out,
    )
    bench = run_bench(config)
    rows = table_rows(bench, Path(args.results))
    command = "python benchmarks/default_model.py " + " ".join(
        f"--{k} {v}"
        for k, v in (("presets", args.presets), ("runs", args.runs), ("threads", args.threads))
    )
    text = markdown(rows, bench, command)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "default_model.json", json.dumps({"rows": rows, "bench": bench}, indent=2))
    write_atomic(out / "default_model.md", text)
    print(text)


if __name__ == "__main__":
    main()
