"""What ONNX Runtime's spinning threads do to timings that alternate between two sessions.

ONNX Runtime's intra-op worker threads busy-wait for a while after each run. When two sessions
take turns on a machine with as many cores as threads (as `weedseg bench`, `int8_ceiling.py`
and the export's FP32/INT8 comparison do), the idle session's pool keeps a core busy while the
other one runs. Times the default model and the peer (random weights, 512x512, batch 1, FP32)
with spinning on and off, run after run alternating between them or each run back to back.

    .venv/bin/python benchmarks/ort_spinning.py --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from weedseg.export.onnx_export import DeployModel, OnnxOptions, export_onnx

from weedseg.defaults import DEFAULT_ARCH
from weedseg.infer.onnx_session import cpu_session
from weedseg.models import build_model

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
PEER = "lraspp-mobilenetv3"


def timed_runs(sessions: dict, x: np.ndarray, runs: int, alternate: bool) -> dict[str, list[float]]:
    """Milliseconds per run: run after run alternating between the sessions, or each in turn."""
    for session in sessions.values():  # warm-up
        session.run(None, {"images": x})
    times: dict[str, list[float]] = {name: [] for name in sessions}
    order = (
        [name for _ in range(runs) for name in sessions]
        if alternate
        else [name for name in sessions for _ in range(runs)]
    )
    for name in order:
        start = time.perf_counter()
        sessions[name].run(None, {"images": x})
        times[name].append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()

    torch.manual_seed(0)
    x = np.random.default_rng(0).integers(0, 256, (1, args.size, args.size, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name in (DEFAULT_ARCH, PEER):
            paths[name] = Path(tmp) / f"{name}.onnx"
            deploy = DeployModel(build_model(name, 3).eval(), MEAN, STD, "NHWC")
            export_onnx(deploy, paths[name], OnnxOptions(args.size, args.size))
        print(f"{args.size}x{args.size}, batch 1, {args.threads} threads, {args.runs} runs each\n")
        print(f"| spinning | runs | {DEFAULT_ARCH} median / best ms | {PEER} median / best ms |")
        print("|---|---|---|---|")
        for spinning in (True, False):
            for alternate in (True, False):
                sessions = {
                    name: cpu_session(path, args.threads, spinning) for name, path in paths.items()
                }
                times = timed_runs(sessions, x, args.runs, alternate)
                cells = [f"{statistics.median(t):.1f} / {min(t):.1f}" for t in times.values()]
                print(
                    f"| {'on' if spinning else 'off'} | "
                    f"{'alternating' if alternate else 'back to back'} | {' | '.join(cells)} |"
                )
                del sessions


if __name__ == "__main__":
    main()
