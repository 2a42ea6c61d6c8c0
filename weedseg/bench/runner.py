"""`run_bench`: every subject x size x batch x backend, timed interleaved, into one results dict.

Per case (subject, size, batch) each backend is loaded and warmed up on its own while the peak
resident memory it adds is recorded; the timed runs then alternate between the loaded backends in
short rounds, so a burst of load from other processes hits every backend alike. With
`interleave_models` the rounds run over every case of every model at once (all loaded together:
more memory, but models compared on a busy machine see the same load).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from weedseg.bench.backends import BackendUnavailable, machine_skip_reason, open_runner
from weedseg.bench.config import CPU_BACKENDS, BenchConfig
from weedseg.bench.machine import load_average, machine_info, measure_fp32_peak
from weedseg.bench.memory import PeakRss, cuda_peak_mib
from weedseg.bench.subjects import Subject, load_subject, peer_subject
from weedseg.bench.timing import Timing, warm_up

ROUND_RUNS = 5  # timed runs of one backend before the next one takes a turn


def export_graphs(subject: Subject, config: BenchConfig, workdir: Path) -> None:
    """Give a subject without a bundle its ONNX graphs: FP32 (dynamic) and, if asked, INT8."""
    from weedseg.export.images import synthetic_images
    from weedseg.export.onnx_export import OnnxOptions, export_onnx, model_input
    from weedseg.export.quantize import quantize_int8

    if subject.onnx is not None:
        return
    folder = workdir / f"subject{len(list(workdir.iterdir()))}"
    folder.mkdir()
    smallest = min(config.sizes)
    options = OnnxOptions(
        height=smallest,
        width=smallest,
        dynamic=True,
        min_size=smallest,
        max_size=max(config.sizes),
        max_batch=max(2, *config.batches),
        layout=subject.layout,
    )
    started = time.perf_counter()
    if subject.head == "raw":
        export_raw_onnx(subject, folder / "model.onnx", options)
    else:
        export_onnx(subject.deploy(), folder / "model.onnx", options)
    subject.onnx = folder / "model.onnx"
    print(f"  exported {subject.name} to ONNX ({time.perf_counter() - started:.1f} s)", flush=True)
    if "ort-int8" not in config.backends:
        return
    started = time.perf_counter()
    images = np.stack(synthetic_images(config.calib_n, smallest, smallest))
    calibration = model_input(images, subject.layout, subject.mean, subject.std)
    try:
        quantize_int8(subject.onnx, folder / "model.int8.onnx", calibration, target="cpu")
    except Exception as exc:  # ONNX Runtime's quantiser raises plain Exceptions
        subject.int8_missing = f"quantising this graph failed: {exc}"
        print(f"  INT8: {subject.int8_missing}", flush=True)
        return
    subject.onnx_int8 = folder / "model.int8.onnx"
    subject.int8_origin = (
        f"quantised here (QDQ, CPU target) on {config.calib_n} synthetic images: speed only"
    )
    print(f"  quantised {subject.name} to INT8 ({time.perf_counter() - started:.1f} s)", flush=True)


def export_raw_onnx(subject: Subject, path: Path, options) -> None:
    """ONNX of a peer's raw outputs: uint8 NHWC input, dynamic batch and size, outputs as traced."""
    import io
    import warnings

    import onnx
    import torch

    from weedseg.export.onnx_export import example_input

    example = example_input("NHWC", 1, options.height, options.width)
    deploy = subject.deploy()
    with torch.no_grad():
        names = [f"output{i}" for i in range(len(deploy(example)))]
    axes = {"images": {0: "batch", 1: "height", 2: "width"}} | {n: {0: "batch"} for n in names}
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings
        torch.onnx.export(
            deploy,
            (example,),
            buffer,
            dynamo=False,
            input_names=["images"],
            output_names=names,
            opset_version=options.opset,
            dynamic_axes=axes,
        )
    onnx.save(onnx.load_from_string(buffer.getvalue()), str(path))


def _case_inputs(subject: Subject, batch: int, size: int) -> np.ndarray:
    from weedseg.export.images import synthetic_images
    from weedseg.export.onnx_export import model_input

    images = np.stack(synthetic_images(batch, size, size, seed=1))  # [B, H, W, 3] uint8
    return model_input(images, subject.layout, subject.mean, subject.std)


def _load(
    backend: str,
    subject: Subject,
    inputs: np.ndarray,
    size: int,
    config: BenchConfig,
    workdir: Path,
) -> tuple[Callable[[], object] | None, dict[str, Any]]:
    """Open and warm up one backend; returns (runner or None, the row's load facts)."""
    reason = machine_skip_reason(backend)
    if not backend.startswith("torch"):  # PyTorch takes any shape; a static graph does not
        reason = reason or subject.shape_note(len(inputs), size)
    if reason:
        return None, {"status": "skipped", "reason": reason}
    cuda = backend == "torch-cuda"
    if cuda:
        cuda_peak_mib(reset=True)
    try:
        with PeakRss() as rss:
            run = open_runner(
                backend, subject, inputs, config.threads, config.channels_last, workdir
            )
            warm_up(run, config.warmup)
    except BackendUnavailable as exc:
        return None, {"status": "skipped", "reason": str(exc)}
    facts: dict[str, Any] = {"status": "ok", "peak_rss_mib": _round(rss.mib, 1)}
    if cuda:
        facts["peak_cuda_mib"] = _round(cuda_peak_mib(), 1)
    return run, facts


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


@dataclass
class Case:
    """One (subject, size, batch): its rows and the loaded backends still to be timed."""

    rows: dict[str, dict[str, Any]]
    runners: dict[str, Callable[[], object]]
    timings: dict[str, Timing]


def load_case(
    subject: Subject, size: int, batch: int, gflops: float, config: BenchConfig, workdir: Path
) -> Case:
    """Load and warm up every backend on one (subject, size, batch)."""
    inputs = _case_inputs(subject, batch, size)
    rows: dict[str, dict[str, Any]] = {}
    runners: dict[str, Callable[[], object]] = {}
    for backend in config.backends:
        run, facts = _load(backend, subject, inputs, size, config, workdir)
        rows[backend] = {
            "model": subject.name,
            "role": subject.role,
            "backend": backend,
            "size": size,
            "batch": batch,
            "gflop_per_image": round(gflops, 3),
        } | facts
        if run is not None:
            runners[backend] = run
    return Case(rows, runners, {backend: Timing() for backend in runners})


def time_cases(cases: list[Case], runs: int) -> None:
    """Timed runs in rounds that alternate between every loaded backend of `cases`."""
    for round_index in range(math.ceil(runs / ROUND_RUNS)):
        count = min(ROUND_RUNS, runs - round_index * ROUND_RUNS)
        for case in cases:
            for backend, run in case.runners.items():
                case.timings[backend].add(run, count)


def finish_case(case: Case) -> list[dict[str, Any]]:
    """The case's rows with their speed figures; its backends are released."""
    timings = case.timings
    torch_ms = timings["torch"].median_ms if "torch" in timings else None
    for backend, timing in timings.items():
        row = case.rows[backend]
        row |= _speed(timing, row["batch"], row["size"], row["gflop_per_image"], torch_ms)
    case.runners.clear()
    return list(case.rows.values())


def _speed(
    timing: Timing, batch: int, size: int, gflops: float, torch_ms: float | None
) -> dict[str, Any]:
    seconds = timing.median_ms / 1000
    return {
        "runs": len(timing.times_ms),
        "median_ms": round(timing.median_ms, 2),
        "p90_ms": round(timing.p90_ms, 2),
        "best_ms": round(timing.best_ms, 2),
        "times_ms": [round(t, 2) for t in timing.times_ms],
        "images_per_s": round(batch / seconds, 2),
        "megapixels_per_s": round(batch * size * size / 1e6 / seconds, 2),
        "gflop_per_s": round(gflops * batch / seconds, 2),
        "gflop_per_s_best": round(gflops * batch * 1000 / timing.best_ms, 2),
        "speedup_vs_torch": round(torch_ms / timing.median_ms, 2) if torch_ms else None,
    }


def run_bench(config: BenchConfig) -> dict[str, Any]:
    """Measure every case in `config`; returns the results (see `report.write_results`)."""
    import torch

    from weedseg.models import count_gflops

    torch.set_num_threads(config.threads)
    subjects = [load_subject(m) for m in config.models]
    subjects += [peer_subject(name) for name in (config.peer or "").split(",") if name]
    machine = machine_info(config.threads)
    peak_before = measure_fp32_peak(config.threads, config.gemm_size)
    print(f"FP32 peak ({peak_before['method']}): {peak_before['peak_gflops']} GFLOP/s", flush=True)
    rows: list[dict[str, Any]] = []
    pending: list[Case] = []  # loaded, not yet timed
    subject_facts = []
    with tempfile.TemporaryDirectory(prefix="weedseg-bench-") as tmp:
        workdir = Path(tmp)
        for subject in subjects:
            print(f"{subject.name} ({subject.source})", flush=True)
            if {"ort", "ort-int8", "cuda", "tensorrt"} & set(config.backends):
                export_graphs(subject, config, workdir)
            gflops = {size: count_gflops(subject.network, size) for size in config.sizes}
            subject_facts.append(_subject_facts(subject, gflops))
            for size in config.sizes:
                for batch in config.batches:
                    pending.append(load_case(subject, size, batch, gflops[size], config, workdir))
                    if not config.interleave_models:
                        rows += _timed(pending, config.runs)
        rows += _timed(pending, config.runs)
    peak_after = measure_fp32_peak(config.threads, config.gemm_size)
    peak = max(peak_before["peak_gflops"], peak_after["peak_gflops"])
    for row in rows:
        if row["status"] == "ok" and row["backend"] in CPU_BACKENDS:  # the peak is the CPU's
            row["percent_of_fp32_peak"] = round(100 * row["gflop_per_s"] / peak, 1)
            # the peak is a best-of GEMM: the best run is its like-for-like on a busy machine
            row["percent_of_fp32_peak_best"] = round(100 * row["gflop_per_s_best"] / peak, 1)
    machine["load_after"] = load_average()
    return {
        "config": config.to_dict(),
        "machine": machine,
        "fp32_peak": {"before": peak_before, "after": peak_after, "peak_gflops": peak},
        "subjects": subject_facts,
        "rows": rows,
    }


def _timed(pending: list[Case], runs: int) -> list[dict[str, Any]]:
    """Time and finish the pending cases (emptying the list); print their rows."""
    time_cases(pending, runs)
    rows = [row for case in pending for row in finish_case(case)]
    pending.clear()
    for row in rows:
        print(f"  {row['model']}: " + _progress_line(row), flush=True)
    return rows


def _subject_facts(subject: Subject, gflops: dict[int, float]) -> dict[str, Any]:
    return {
        "name": subject.name,
        "role": subject.role,
        "source": subject.source,
        "weights": subject.weights,
        "params_m": round(subject.params_m(), 3),
        "gflop_per_image": {str(size): round(value, 3) for size, value in gflops.items()},
        "input": subject.layout,
        "int8": subject.int8_origin or None,
    }


def _progress_line(row: dict[str, Any]) -> str:
    head = f"{row['backend']:<10} {row['size']}px batch {row['batch']}: "
    if row["status"] != "ok":
        return head + f"skipped ({row['reason']})"
    return head + (
        f"{row['median_ms']:.1f} ms median, {row['p90_ms']:.1f} ms p90, "
        f"{row['images_per_s']:.2f} img/s"
    )
