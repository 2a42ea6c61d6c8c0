"""Run a model bundle on images of any size with ONNX Runtime or TensorRT; torch-free.

The bundle's manifest says everything needed: input layout and dtype, normalisation, classes,
static or dynamic shapes, default tiling. Small images are padded to a multiple of 32 and run in
one pass; large ones are cut into overlapping tiles (`weedseg.tiling`) whose probabilities are
blended with weights that fall smoothly towards the window edges, so no seam runs through a
plant (the bundle's `tile.merge: stitch` takes each pixel's class from one window instead:
faster, with straight cuts along the tile cores, benchmarks/seams.py). A bundle with an input
scale below 1 (a model trained on shrunk photos) sees each photo resized by it; its
probabilities are resized back to the photo's size before the argmax. With the plant vote
(`weedseg.infer.plant_vote`) each plant region takes one class. The session and the network's
input and output handling live in `weedseg.infer.model_runner`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from weedseg.bundle import TILE_MERGES, Bundle, BundleError, check_input_scale, load_bundle
from weedseg.classes import ClassInfo
from weedseg.defaults import TTA_MODES
from weedseg.errors import WeedsegError
from weedseg.infer.analysis import class_fractions
from weedseg.infer.model_runner import Clock, ModelRunner, open_model_session
from weedseg.infer.plant_vote import plant_vote as vote_plants
from weedseg.infer.prediction import Prediction, argmax_classes
from weedseg.tiling import (
    SIZE_MULTIPLE,
    TilingOptions,
    pad_image,
    predict_scaled,
    predict_tiled_labels,
    resize_by,
    resize_planes,
    round_up,
    with_tta,
)


class Predictor:
    """A loaded bundle ready to segment HxWx3 uint8 RGB images."""

    def __init__(
        self,
        bundle: Bundle,
        session,
        tile: int | None = None,
        overlap: int | None = None,
        batch_size: int = 4,
        input_scale: float | None = None,
        merge: str | None = None,
        plant_vote: bool | None = None,
        tta: str = "none",
    ) -> None:
        """`tile`, `overlap`, `input_scale`, `merge` and `plant_vote` override the manifest's
        (None: the bundle's own); the resolved tiling is `self.tiling`."""
        manifest = bundle.manifest
        self.bundle = bundle
        self.manifest = manifest
        self.classes: tuple[ClassInfo, ...] = manifest.class_infos()
        self.num_classes = len(self.classes)
        self.runner = ModelRunner(bundle, session, self.num_classes)
        self.tiling = self._tiling(tile, overlap, batch_size, input_scale, merge)
        self.plant_vote = manifest.plant_vote if plant_vote is None else plant_vote
        if tta not in TTA_MODES:
            raise WeedsegError(f"tta must be one of {TTA_MODES}, got {tta!r}")
        self.tta = tta

    @classmethod
    def from_bundle(
        cls,
        path: str | Path,
        providers: str | Sequence[str] = "auto",
        precision: str = "fp32",
        tile: int | None = None,
        overlap: int | None = None,
        batch_size: int = 4,
        threads: int | None = None,
        spinning: bool = True,
        input_scale: float | None = None,
        merge: str | None = None,
        plant_vote: bool | None = None,
        tta: str = "none",
    ) -> Predictor:
        """Load and verify a bundle folder and open an inference session on it.

        `providers="auto"`: the bundle's TensorRT engine when it matches this GPU and TensorRT,
        else ONNX Runtime with TensorRT EP > CUDA EP > CPU, whichever work here; or name them
        ("tensorrt-engine", "cuda,cpu", ...). `precision="int8"` runs the INT8 model (or engine);
        `threads` caps ONNX Runtime's CPU threads; `spinning=False` lets them sleep between
        operators instead of busy-waiting, which frees the cores for the decode and write threads
        of a batch pipeline (a latency-bound server keeps the default). `input_scale` overrides
        the manifest's: photos are resized by it before the model (e.g. 2.0 for photos taken
        from twice the height the model was trained at). `merge` ("blend" or "stitch") and
        `plant_vote` override the manifest's defaults. `tta="flip"` averages each tile's
        probabilities with those of its two mirror images (3x the model time).
        """
        bundle = load_bundle(path)
        session = open_model_session(
            bundle, providers, precision, tile, batch_size, threads, spinning
        )
        return cls(
            bundle,
            session,
            tile=tile,
            overlap=overlap,
            batch_size=batch_size,
            input_scale=input_scale,
            merge=merge,
            plant_vote=plant_vote,
            tta=tta,
        )

    @property
    def session(self):
        """The open ONNX Runtime session or TensorRT engine; None once closed."""
        return self.runner.session

    @property
    def providers(self) -> list[str]:
        return self.runner.providers

    @property
    def closed(self) -> bool:
        return self.session is None

    def close(self) -> None:
        """Release the session now, not whenever the garbage collector gets to it: a TensorRT
        engine's device buffers and stream are freed, an ONNX Runtime session is dropped.
        Idempotent; predicting afterwards is an error."""
        self.runner.close()

    def describe(self) -> str:
        """One line for logs: model, providers, tile and input type."""
        fixed_size, tiling = self.runner.fixed_size, self.tiling
        shape = "dynamic" if fixed_size is None else "x".join(map(str, fixed_size))
        return (
            f"{self.manifest.model_name} ({self.num_classes} classes) on "
            f"{', '.join(self.providers)}; input {self.manifest.input.layout} "
            f"{self.manifest.input.dtype} {shape}; tile {tiling.tile} overlap {tiling.overlap} "
            f"({tiling.merge}ed)"
            + (f"; input scale {tiling.input_scale:g}" if tiling.input_scale != 1.0 else "")
            + ("; plant vote" if self.plant_vote else "")
            + (f"; {self.tta} TTA" if self.tta != "none" else "")
        )

    def _tiling(
        self,
        tile: int | None,
        overlap: int | None,
        batch_size: int,
        input_scale: float | None,
        merge: str | None,
    ) -> TilingOptions:
        """The manifest's tiling with the given overrides, checked against what the model takes."""
        if self.runner.fixed_size is not None:
            height, width = self.runner.fixed_size
            if height != width:
                raise BundleError(f"static bundle input {height}x{width} is not square")
            if tile is not None and tile != height:
                raise WeedsegError(
                    f"this bundle was exported at a static {height}x{width}: the tile must be "
                    f"{height} (got {tile}); re-export with --dynamic for other sizes"
                )
            tile = height
        tile = tile or self.manifest.tile.size
        if self.manifest.input.dynamic and tile > self.manifest.input.max_size:
            raise WeedsegError(
                f"tile {tile} is larger than this bundle accepts (sides up to "
                f"{self.manifest.input.max_size}); use --tile {self.manifest.input.max_size} "
                "or less, or re-export with a larger --max-size"
            )
        if tile % SIZE_MULTIPLE:
            raise WeedsegError(f"tile must be a multiple of {SIZE_MULTIPLE}, got {tile}")
        overlap = self.manifest.tile.overlap if overlap is None else overlap
        if not 0 <= overlap < tile // 2:
            raise WeedsegError(f"overlap must be in [0, tile/2), got {overlap} for tile {tile}")
        input_scale = self.manifest.input_scale if input_scale is None else float(input_scale)
        check_input_scale(input_scale, "input scale")
        merge = self.manifest.tile.merge if merge is None else merge
        if merge not in TILE_MERGES:
            raise WeedsegError(f"tile merge must be one of {TILE_MERGES}, got {merge!r}")
        return TilingOptions(tile, overlap, max(1, batch_size), input_scale, merge)

    def _finish(
        self,
        labels: np.ndarray,
        probs: np.ndarray | None,
        clock: Clock,
        started: float,
        plant_vote: bool = False,
    ) -> Prediction:
        """Class map [H, W] (and probs [K, H, W]) -> Prediction with fractions and timings; with
        `plant_vote` each plant region of the class map takes its most probable class."""
        if plant_vote:
            labels = vote_plants(labels, probs)
        fractions = class_fractions(labels, self.classes)
        total = (time.perf_counter() - started) * 1000
        timings = {
            "pre": clock.pre,
            "inference": clock.inference,
            "post": max(total - clock.pre - clock.inference, 0.0),
        }
        return Prediction(labels, probs, fractions, timings)

    def _votes(self, plant_vote: bool | None | Sequence[bool | None], count: int) -> list[bool]:
        """One plant-vote flag per image: the same for all, or one each; None: the default."""
        one = plant_vote is None or isinstance(plant_vote, bool)
        flags = [plant_vote] * count if one else list(plant_vote)
        if len(flags) != count:
            raise WeedsegError(f"{len(flags)} plant-vote flags for {count} images")
        return [self.plant_vote if flag is None else bool(flag) for flag in flags]

    def predict(
        self, image: np.ndarray, return_probs: bool = False, plant_vote: bool | None = None
    ) -> Prediction:
        """Segment one HxWx3 uint8 RGB image; the class map has the image's size.

        The tiles' probabilities are blended (and resized back to the image's size) and the
        class map is their argmax; a predictor that stitches (`merge="stitch"`) takes the tiles'
        own class maps instead, unless probabilities are asked for, the model works at a reduced
        input scale, or the plant vote (default: the predictor's) or test-time augmentation
        needs them.
        """
        _check_image(image)
        [vote] = self._votes(plant_vote, 1)
        started, clock = time.perf_counter(), Clock()
        if self.tiling.merge == "stitch" and not (return_probs or vote or self._needs_probs):
            run_labels = functools.partial(self.runner.run_labels, clock=clock)
            labels = predict_tiled_labels(image, run_labels, self.tiling)
            return self._finish(labels, None, clock, started)
        run_batch = with_tta(functools.partial(self.runner.run_batch, clock=clock), self.tta)
        probs = predict_scaled(image, run_batch, self.num_classes, self.tiling)
        prediction = self._finish(argmax_classes(probs), probs, clock, started, vote)
        if not return_probs:
            prediction.probs = None
        return prediction

    def predict_batch(
        self,
        images: Sequence[np.ndarray],
        return_probs: bool = False,
        plant_vote: bool | None | Sequence[bool | None] = None,
    ) -> list[Prediction]:
        """Segment several images; those that fit in one tile run together, by padded size.
        `plant_vote`: one flag for all images or one per image (None: the predictor's)."""
        votes = self._votes(plant_vote, len(images))
        tile, batch_size = self.tiling.tile, self.tiling.batch_size
        results: list[Prediction | None] = [None] * len(images)
        inputs: dict[int, np.ndarray] = {}  # image index -> what the model sees (resized)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, image in enumerate(images):
            _check_image(image)
            model_input = resize_by(image, self.tiling.input_scale)
            height, width = model_input.shape[:2]
            if height <= tile and width <= tile:
                inputs[i] = model_input
                groups.setdefault((round_up(height), round_up(width)), []).append(i)
            else:
                results[i] = self.predict(image, return_probs, votes[i])
        for (full_h, full_w), indices in groups.items():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                want_probs = return_probs or self._needs_probs or any(votes[i] for i in chunk)
                clock = Clock()
                run = (
                    with_tta(functools.partial(self.runner.run_batch, clock=clock), self.tta)
                    if want_probs
                    else functools.partial(self.runner.run_labels, clock=clock)
                )
                tiles = np.stack([pad_image(inputs[i], full_h, full_w) for i in chunk])
                out = run(tiles)  # [n, K, full_h, full_w] probs or [n, full_h, full_w]
                share = Clock(clock.pre / len(chunk), clock.inference / len(chunk))
                for i, image_out in zip(chunk, out, strict=True):
                    height, width = inputs[i].shape[:2]
                    # each image is charged its share of the batch, then its own post-processing
                    started = time.perf_counter() - (share.pre + share.inference) / 1000
                    cropped = np.ascontiguousarray(image_out[..., :height, :width])
                    if want_probs:
                        probs = resize_planes(cropped, *images[i].shape[:2])
                        labels = argmax_classes(probs)
                        result = self._finish(labels, probs, share, started, votes[i])
                        if not return_probs:
                            result.probs = None
                        results[i] = result
                    else:
                        results[i] = self._finish(cropped, None, share, started)
        return results  # type: ignore[return-value]

    @property
    def _needs_probs(self) -> bool:
        """Whether every image needs the tiles' probabilities, not just their class maps (the
        model works at a reduced input scale, or the augmented views are averaged)."""
        return self.tiling.input_scale != 1.0 or self.tta != "none"

    def warmup(self) -> None:
        """Run one tile so the first real request does not pay for lazy initialisation."""
        tile = self.tiling.tile
        self.runner.run_batch(np.zeros((1, tile, tile, 3), dtype=np.uint8), Clock())


def _check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise WeedsegError(
            f"expected an HxWx3 uint8 RGB image, got shape {image.shape} dtype {image.dtype}"
        )
