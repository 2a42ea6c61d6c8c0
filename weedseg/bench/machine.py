"""The machine a benchmark ran on, and its measured FP32 peak (the compute floor of the table).

The peak is the best sustained FP32 matrix multiply (GEMM) rate, measured with both PyTorch
(oneDNN/MKL) and NumPy (OpenBLAS) on square float32 matrices at the benchmark's thread count.
A large GEMM is the densest FP32 work a CPU library reaches (convolutions are lowered to GEMM-like
kernels with more memory traffic), so FLOPs / this rate is a fair lower bound for a model's
latency, and a backend's "% of peak" says how much of the CPU it actually uses.
"""

from __future__ import annotations

import datetime
import os
import platform
import time
from pathlib import Path

import numpy as np

ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")
GEMM_SIZE = 2048


def cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo (platform's guess elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def isa_flags() -> list[str]:
    """Vector and matrix extensions the CPU reports (they decide FP32 and INT8 peaks)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    lines = [ln for ln in text.splitlines() if ln.startswith("flags")]
    flags = lines[0].split(":", 1)[1].split() if lines else []
    return [f for f in ISA_FLAGS if f in flags]


def load_average() -> tuple[float, float, float]:
    """1, 5 and 15 minute load averages (others' work on a shared machine skews timings)."""
    return os.getloadavg()


def machine_info(threads: int) -> dict:
    """What the results JSON records about the machine and the software."""
    import onnxruntime
    import torch

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": threads,
        "isa": isa_flags(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_before": load_average(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _best_gflops(multiply, flop: float, repeats: int) -> float:
    multiply()  # warm-up: thread pools, page faults
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        multiply()
        best = min(best, time.perf_counter() - start)
    return flop / best / 1e9


def measure_fp32_peak(threads: int, size: int = GEMM_SIZE, repeats: int = 5) -> dict:
    """GFLOP/s of a size x size float32 GEMM in PyTorch and NumPy; `peak` is the better one.

    NumPy's BLAS runs on every core whatever `threads` says, so it only counts when every core
    is in use (with fewer threads it would claim a peak the measured backends cannot reach).
    """
    import torch

    flop = 2.0 * size**3
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    torch.set_num_threads(threads)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    with torch.inference_mode():
        torch_gflops = _best_gflops(lambda: torch.mm(ta, tb), flop, repeats)
    numpy_gflops = None
    if threads >= (os.cpu_count() or 1):
        numpy_gflops = round(_best_gflops(lambda: a @ b, flop, repeats), 1)
    return {
        "method": f"best of {repeats} float32 GEMMs {size}x{size}x{size}",
        "torch_gflops": round(torch_gflops, 1),
        "numpy_gflops": numpy_gflops,
        "peak_gflops": round(max(torch_gflops, numpy_gflops or 0.0), 1),
    }
