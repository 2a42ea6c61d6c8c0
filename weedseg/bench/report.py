"""Benchmark results as `bench.json` (everything) and `bench.md` (the table a person reads)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from weedseg.atomic import write_atomic

COLUMNS = (
    ("model", "model"),
    ("backend", "backend"),
    ("size", "size"),
    ("batch", "batch"),
    ("median_ms", "median ms"),
    ("p90_ms", "p90 ms"),
    ("best_ms", "best ms"),
    ("images_per_s", "img/s"),
    ("megapixels_per_s", "MP/s"),
    ("peak_rss_mib", "peak RSS MiB"),
    ("gflop_per_image", "GFLOP/img"),
    ("gflop_per_s", "GFLOP/s"),
    ("percent_of_fp32_peak", "% FP32 peak"),
    ("percent_of_fp32_peak_best", "% peak (best run)"),
    ("speedup_vs_torch", "x torch"),
)


def _cell(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None:
        return "-"
    if key == "speedup_vs_torch":
        return f"{value:.2f}x"
    return str(value)


def markdown_table(results: dict[str, Any]) -> str:
    """The measured rows as a Markdown table, skipped backends listed below it with the reason."""
    lines = [
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    ok = [r for r in results["rows"] if r["status"] == "ok"]
    lines += ["| " + " | ".join(_cell(r, key) for key, _ in COLUMNS) + " |" for r in ok]
    skipped: dict[tuple[str, str], list[str]] = {}
    for row in results["rows"]:
        if row["status"] != "ok":
            cases = skipped.setdefault((row["backend"], row["reason"]), [])
            cases.append(f"{row['model']} {row['size']}px b{row['batch']}")
    if skipped:
        lines.append("")
        lines += [
            f"Skipped: **{backend}**: {reason} ({len(cases)} case{'s' * (len(cases) > 1)})"
            for (backend, reason), cases in skipped.items()
        ]
    return "\n".join(lines)


def machine_line(results: dict[str, Any]) -> str:
    """One line saying where and when: CPU, cores, threads, GPU, date, load."""
    m = results["machine"]
    load = "/".join(f"{x:.1f}" for x in m["load_before"])
    after = "/".join(f"{x:.1f}" for x in m.get("load_after", m["load_before"]))
    return (
        f"{m['cpu']} ({m['cores']} cores, {m['threads']} threads used; {', '.join(m['isa'])}), "
        f"GPU: {m['gpu'] or 'none'}; {m['date']}; load average (1/5/15 min) {load} before, "
        f"{after} after; torch {m['torch']}, onnxruntime {m['onnxruntime']}"
    )


def markdown_report(results: dict[str, Any]) -> str:
    """bench.md: machine, compute floor, subjects, table."""
    peak = results["fp32_peak"]
    lines = [
        "# weedseg bench",
        "",
        f"Machine: {machine_line(results)}",
        "",
        f"FP32 peak: **{peak['peak_gflops']} GFLOP/s** ({peak['before']['method']}, PyTorch and "
        f"NumPy, before and after the runs: {peak['before']['torch_gflops']}/"
        f"{peak['before']['numpy_gflops'] or '-'} and {peak['after']['torch_gflops']}/"
        f"{peak['after']['numpy_gflops'] or '-'} GFLOP/s; NumPy only when every core is used).",
        "",
        "| model | role | params (M) | GFLOP/img | weights | INT8 graph |",
        "|---|---|---|---|---|---|",
    ]
    for s in results["subjects"]:
        gflops = ", ".join(f"{v} @{k}" for k, v in s["gflop_per_image"].items())
        lines.append(
            f"| {s['name']} | {s['role']} | {s['params_m']} | {gflops} | {s['weights']} "
            f"| {s['int8'] or '-'} |"
        )
    config = results["config"]
    lines += [
        "",
        f"{config['warmup']} warm-up + {config['runs']} timed runs per row, interleaved "
        f"between backends in rounds; input uint8 images, output class map + probabilities.",
        "",
        markdown_table(results),
        "",
    ]
    return "\n".join(lines)


def write_results(results: dict[str, Any], out: str | Path) -> tuple[Path, Path]:
    """Write bench.json and bench.md into `out` (atomically); return both paths."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / "bench.json", folder / "bench.md"
    write_atomic(json_path, json.dumps(results, indent=2))
    write_atomic(md_path, markdown_report(results))
    return json_path, md_path
