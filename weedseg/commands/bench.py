"""`weedseg bench`: latency, throughput and memory of a model on each runtime, vs the CPU's peak."""

from __future__ import annotations

import argparse

from weedseg.config_flags import add_config_flags, config_from_args

HELP = "benchmark a model on torch / ONNX Runtime (FP32, INT8) / CUDA / TensorRT"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from weedseg.bench.config import BenchConfig

    add_config_flags(parser, BenchConfig)


def run(args: argparse.Namespace) -> int:
    from weedseg.bench import BenchConfig, markdown_table, run_bench, write_results

    config = config_from_args(BenchConfig, args)
    print("bench:", ", ".join(f"{k}={v}" for k, v in config.to_dict().items()))
    results = run_bench(config)
    json_path, md_path = write_results(results, config.out)
    print(markdown_table(results))
    print(f"Results: {md_path} and {json_path}")
    return 0
