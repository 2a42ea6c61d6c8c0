"""The runtimes a benchmark compares, each turned into a zero-argument callable on one batch.

torch: PyTorch eager on CPU; ort / ort-int8: ONNX Runtime CPU on the FP32 / INT8 graph;
cuda: ONNX Runtime CUDA EP; torch-cuda: PyTorch eager on the GPU; tensorrt: ONNX Runtime
TensorRT EP. Every one runs the bundle computation (normalise -> network -> labels + probs) on
the same uint8 batch; a backend that cannot run here says why instead.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np

from weedseg.bench.config import ALL_BACKENDS
from weedseg.bench.subjects import Subject
from weedseg.infer.onnx_session import provider_loads, session_options

_ORT_PROVIDERS = {
    "ort": "CPUExecutionProvider",
    "ort-int8": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


class BackendUnavailable(Exception):
    """A backend cannot run on this machine or for this subject; the message says why."""


def machine_skip_reason(backend: str) -> str | None:
    """Why `backend` cannot run on this machine at all (None when it can)."""
    if backend == "torch-cuda":
        import torch

        return None if torch.cuda.is_available() else "PyTorch sees no CUDA device"
    provider = _ORT_PROVIDERS.get(backend)
    if provider is None or provider == "CPUExecutionProvider":
        return None
    import onnxruntime as ort

    if provider not in ort.get_available_providers():
        return f"this onnxruntime build has no {provider}"
    if not provider_loads(provider):
        need = "TensorRT and CUDA" if backend == "tensorrt" else "CUDA"
        return f"{provider} is built in but its libraries do not load ({need} runtime / GPU absent)"
    return None


def open_runner(
    backend: str,
    subject: Subject,
    inputs: np.ndarray,
    threads: int,
    channels_last: bool = False,
    cache_dir: Path | None = None,
) -> Callable[[], object]:
    """Load `subject` on `backend` for `inputs` (the graph's input layout, [B, ...])."""
    if backend in ("torch", "torch-cuda"):
        return _torch_runner(subject, inputs, threads, channels_last, cuda=backend == "torch-cuda")
    if backend not in _ORT_PROVIDERS:
        raise BackendUnavailable(f"unknown backend {backend!r} (have {', '.join(ALL_BACKENDS)})")
    path = subject.onnx_int8 if backend == "ort-int8" else subject.onnx
    if path is None:
        raise BackendUnavailable(subject.int8_missing)
    session = _ort_session(path, _ORT_PROVIDERS[backend], inputs.shape, threads, cache_dir)
    feed = {session.get_inputs()[0].name: inputs}
    return lambda: session.run(None, feed)


def _torch_runner(
    subject: Subject, inputs: np.ndarray, threads: int, channels_last: bool, cuda: bool
) -> Callable[[], object]:
    import torch

    torch.set_num_threads(threads)
    deploy = subject.deploy()
    x = torch.from_numpy(inputs)  # [B, H, W, 3] uint8 or [B, 3, H, W] float32
    if channels_last:
        deploy = deploy.to(memory_format=torch.channels_last)
    if not cuda:

        def run() -> object:
            with torch.inference_mode():
                return deploy(x)

        return run
    # a copy: the subject's network stays on the CPU for the rows after this one
    deploy, x = copy.deepcopy(deploy).cuda(), x.cuda()

    def run_cuda() -> object:
        with torch.inference_mode():
            out = deploy(x)
        torch.cuda.synchronize()
        return out

    return run_cuda


def _ort_session(
    path: Path, provider: str, shape: tuple[int, ...], threads: int, cache_dir: Path | None
):
    """An ONNX Runtime session with dynamic dimensions pinned to this case's shape."""
    import onnxruntime as ort

    # backends take turns: an idle pool must not spin while the next backend runs
    options = session_options(threads, spinning=False)
    options.inter_op_num_threads = 1
    # a dynamic graph runs as fast as a static one once its free dimensions are fixed
    nhwc = shape[-1] == 3
    batch, height, width = (shape[0], shape[1], shape[2]) if nhwc else (shape[0], *shape[2:])
    for name, value in (("batch", batch), ("height", height), ("width", width)):
        options.add_free_dimension_override_by_name(name, value)
    providers: list = ["CPUExecutionProvider"]
    if provider == "TensorrtExecutionProvider":
        cache = str(cache_dir or Path.cwd())
        trt = {"trt_engine_cache_enable": "True", "trt_engine_cache_path": cache}
        providers = [(provider, trt), "CUDAExecutionProvider", *providers]
    elif provider == "CUDAExecutionProvider":
        providers = [provider, *providers]
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # ONNX Runtime raises its own error types for provider failures
        raise BackendUnavailable(f"{provider} failed to create a session: {exc}") from exc
    if session.get_providers()[0] != provider:
        raise BackendUnavailable(f"{provider} fell back to {session.get_providers()[0]}")
    return session
