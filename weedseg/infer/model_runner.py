"""A bundle's network on batches of tiles; torch-free.

`open_model_session` opens the bundle's TensorRT engine or an ONNX Runtime session on its FP32
or INT8 model. `ModelRunner` pads tiles to a size the model accepts (its static size, or at
least its minimum side), normalises them as the manifest says, fills a static batch and returns
probabilities or class maps cropped back to the tiles, timing pre-processing and inference.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from weedseg.bundle import Bundle, BundleError
from weedseg.errors import WeedsegError
from weedseg.infer.onnx_session import bundle_providers, resolve_providers, session_options
from weedseg.infer.prediction import argmax_classes
from weedseg.tiling import pad_image


def open_model_session(
    bundle: Bundle,
    providers: str | Sequence[str] = "auto",
    precision: str = "fp32",
    tile: int | None = None,
    batch_size: int = 4,
    threads: int | None = None,
    spinning: bool = True,
):
    """The session that runs `bundle` (see `Predictor.from_bundle` for the arguments): its
    TensorRT engine, or ONNX Runtime with the providers' options for `tile` x `batch_size`."""
    import onnxruntime as ort

    if precision == "int8":
        if bundle.int8_path is None:
            raise BundleError(f"{bundle.root}: bundle has no INT8 model (export with --int8)")
        model_path = bundle.int8_path
    elif precision == "fp32":
        model_path = bundle.onnx_path
    else:
        raise WeedsegError(f"precision must be fp32 or int8, got {precision!r}")
    options = session_options(threads, spinning)
    session = _engine_session(bundle, providers, precision)
    if session is None:
        chosen = resolve_providers(providers)
        tile_size = tile or bundle.manifest.tile.size
        session = ort.InferenceSession(
            str(model_path),
            sess_options=options,
            providers=bundle_providers(chosen, bundle.manifest, tile_size, max(1, batch_size)),
        )
    return session


def _engine_session(bundle: Bundle, providers, precision: str):
    """The bundle's TensorRT engine when asked for ("tensorrt-engine") or, with "auto", when
    one exists and this machine can run it; None means use ONNX Runtime."""
    from weedseg.infer.tensorrt_engine import (
        ENGINE_PROVIDER,
        engine_runtime_available,
        open_engine_session,
    )

    wanted = providers == "auto" or providers in (ENGINE_PROVIDER, "tensorrt-engine")
    if not wanted:
        return None
    if not (bundle.manifest.tensorrt and engine_runtime_available()):
        if providers != "auto":
            raise WeedsegError(
                "a TensorRT engine needs the tensorrt and cuda-python packages and an engine in "
                f"the bundle (weedseg export --tensorrt); {bundle.root} or this machine lacks one"
            )
        return None
    try:
        return open_engine_session(bundle, precision)
    except WeedsegError as exc:
        if providers != "auto":
            raise
        warnings.warn(f"not using the TensorRT engine: {exc}", RuntimeWarning, stacklevel=4)
        return None


@dataclass
class Clock:
    """Milliseconds spent in pre-processing and in the model during one prediction."""

    pre: float = 0.0
    inference: float = 0.0


class ModelRunner:
    """An open session on a bundle's model: uint8 RGB tiles in, probabilities or classes out."""

    def __init__(self, bundle: Bundle, session, num_classes: int) -> None:
        manifest = bundle.manifest
        self.bundle = bundle
        self.session = session
        self.num_classes = num_classes
        self._input = session.get_inputs()[0]
        self._nhwc = manifest.input.layout.upper() == "NHWC"
        outputs = [o.name for o in session.get_outputs()]
        self._output = "probs" if "probs" in outputs else "labels"
        self._has_labels = "labels" in outputs  # argmax inside the graph
        batch_dim, height, width = (
            self._input.shape[:3] if self._nhwc else [self._input.shape[i] for i in (0, 2, 3)]
        )
        self._fixed_batch = batch_dim if isinstance(batch_dim, int) else None
        fixed = isinstance(height, int) and isinstance(width, int)
        # (height, width) of a static graph's input; None when its sides are dynamic
        self.fixed_size: tuple[int, int] | None = (height, width) if fixed else None
        mean = np.asarray(manifest.mean, dtype=np.float32)
        std = np.asarray(manifest.std, dtype=np.float32)
        self._scale = 1.0 / (255.0 * std)
        self._shift = -mean / std

    @property
    def providers(self) -> list[str]:
        return list(self._open_session().get_providers())

    def close(self) -> None:
        """Release the session now (see `Predictor.close`); idempotent."""
        session, self.session = self.session, None
        close_session = getattr(session, "close", None)  # ONNX Runtime sessions have none
        if close_session is not None:
            close_session()

    def _open_session(self):
        if self.session is None:
            raise WeedsegError(f"the predictor for {self.bundle.root} was closed")
        return self.session

    def model_size(self, height: int, width: int) -> tuple[int, int]:
        """The input size the model accepts for an h x w tile: the static size, or at least
        the bundle's minimum side (smaller tiles are padded, outputs cropped)."""
        if self.fixed_size is not None:
            return self.fixed_size
        low = self.bundle.manifest.input.min_size
        return max(height, low), max(width, low)

    def preprocess(self, tiles: np.ndarray) -> np.ndarray:
        """tiles [N, h, w, 3] uint8 -> the model's input (NCHW float32 normalised or NHWC uint8)."""
        if self._nhwc:
            return np.ascontiguousarray(tiles)
        x = tiles.astype(np.float32) * self._scale + self._shift  # [N, h, w, 3]
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # [N, 3, h, w]

    def run_labels(self, tiles: np.ndarray, clock: Clock) -> np.ndarray:
        """tiles [N, h, w, 3] uint8 -> class ids [N, h, w] uint8 (the graph's own argmax)."""
        if not self._has_labels:
            return np.stack([argmax_classes(p) for p in self.run_batch(tiles, clock)])
        return self._run(tiles, clock, "labels")

    def run_batch(self, tiles: np.ndarray, clock: Clock) -> np.ndarray:
        """tiles [N, h, w, 3] uint8 -> probabilities [N, K, h, w] float32."""
        out = self._run(tiles, clock, self._output)
        if self._output == "labels":  # no probabilities exported: blend one-hot votes
            out = (out[:, None] == np.arange(self.num_classes)[None, :, None, None]).astype(
                np.float32
            )
        return out

    def _run(self, tiles: np.ndarray, clock: Clock, output: str) -> np.ndarray:
        """tiles [N, h, w, 3] uint8 -> the model's `output` for them, cropped to h x w."""
        count, height, width = tiles.shape[:3]
        full_h, full_w = self.model_size(height, width)
        if (full_h, full_w) != (height, width):
            tiles = np.stack([pad_image(t, full_h, full_w) for t in tiles])
        step = self._fixed_batch or count
        outputs = []
        for start in range(0, count, step):
            chunk = tiles[start : start + step]
            if self._fixed_batch and len(chunk) < self._fixed_batch:
                filler = np.zeros((self._fixed_batch - len(chunk), *chunk.shape[1:]), chunk.dtype)
                chunk = np.concatenate([chunk, filler])
            t0 = time.perf_counter()
            x = self.preprocess(chunk)
            t1 = time.perf_counter()
            out = self._open_session().run([output], {self._input.name: x})[0]
            clock.pre += (t1 - t0) * 1000
            clock.inference += (time.perf_counter() - t1) * 1000
            outputs.append(out[: min(step, count - start)])
        out = np.concatenate(outputs) if len(outputs) > 1 else outputs[0]
        return out[..., :height, :width]  # [N, K, h, w] probs or [N, h, w] labels
