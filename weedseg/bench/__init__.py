"""`weedseg bench`: how fast each runtime runs a model, and how far that is from the CPU's peak.

    config = BenchConfig(models=["preset:unet-mobilenetv3-lite"], sizes=[512], batches=[1, 4])
    results = run_bench(config)          # rows: model x backend x size x batch
    write_results(results, "runs/bench") # bench.json + bench.md

Per row: median and p90 latency, images/s, megapixels/s, peak memory, the model's GFLOP and
the share of the machine's measured FP32 peak (a large GEMM) the backend reaches.
"""

from typing import Any

from weedseg.bench.config import ALL_BACKENDS, BenchConfig
from weedseg.bench.report import markdown_report, markdown_table, write_results

__all__ = [
    "ALL_BACKENDS",
    "BenchConfig",
    "markdown_report",
    "markdown_table",
    "run_bench",
    "write_results",
]


def __getattr__(name: str) -> Any:
    """`run_bench` loads the runner (torch, ONNX Runtime) on first use, so the CLI reads
    BenchConfig's flags where torch is not installed."""
    if name == "run_bench":
        from weedseg.bench.runner import run_bench

        return run_bench
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
