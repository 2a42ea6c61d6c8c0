"""The `weedseg predict` run: expand sources, skip finished work, predict, report.

Plain images flow through a bounded pipeline: decode threads -> the model (`--streams`
threads) -> writer threads, so reading and writing overlap inference and memory stays flat. GeoTIFF
orthomosaics are read window by window (`weedseg.predict.geo`). With `--ray` the same per-image
work runs on a Ray actor pool instead (`weedseg.predict.ray_runner`).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from weedseg.atomic import write_atomic
from weedseg.bundle import MANIFEST_FILE, read_manifest, sha256_file
from weedseg.errors import WeedsegError
from weedseg.infer.onnx_session import resolve_providers
from weedseg.infer.predictor import Predictor
from weedseg.predict.config import PredictConfig
from weedseg.predict.outputs import LoadedImage, load_input, write_outputs
from weedseg.predict.records import ERRORS_FILE, SUMMARY_FILE, RunState
from weedseg.predict.sources import SourceItem, expand_sources

CONFIG_FILE = "predict.yaml"


@dataclass
class Speed:
    """Per-image milliseconds summed over the images this run processed."""

    images: int = 0
    totals: dict[str, float] = field(
        default_factory=lambda: {"pre": 0.0, "inference": 0.0, "post": 0.0}
    )
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, timings_ms: dict[str, float]) -> None:
        with self.lock:
            self.images += 1
            for key in self.totals:
                self.totals[key] += timings_ms.get(key, 0.0)

    def line(self) -> str:
        n = max(self.images, 1)
        pre, inference, post = (self.totals[k] / n for k in ("pre", "inference", "post"))
        return (
            f"Speed: {pre:.1f}ms pre-process, {inference:.1f}ms inference, "
            f"{post:.1f}ms post-process per image"
        )


def failure_reason(exc: BaseException) -> str:
    """One line for errors.csv: the user-facing message, or the exception type and text."""
    if isinstance(exc, WeedsegError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def stream_count(config: PredictConfig) -> int:
    """`--streams`, or by default 2 on a CPU-only machine with 2-4 cores, else 1.

    On 2 cores, 2 streams of one thread each reach 0.90-0.93 of the bare model's throughput
    where one stream on both cores reaches 0.84: a decode or write preempts only its own stream,
    not a run whose threads wait for each other (RESULTS.md). On GPUs and larger CPUs, where
    decoding takes a smaller share, one stream stays the default (not measured here).
    """
    if config.streams is not None:
        return config.streams
    cores = os.cpu_count() or 1
    cpu_only = resolve_providers(config.providers) == ["CPUExecutionProvider"]
    return 2 if cpu_only and 2 <= cores <= 4 else 1


def make_predictor(config: PredictConfig) -> Predictor:
    threads, streams = config.threads, stream_count(config)
    if threads is None and streams > 1:  # the cores shared out between the streams
        threads = max(1, (os.cpu_count() or 1) // streams)
    return Predictor.from_bundle(
        config.model,
        providers=config.providers,
        precision="int8" if config.int8 else "fp32",
        tile=config.tile,
        overlap=config.overlap,
        batch_size=config.batch,
        threads=threads,
        input_scale=config.input_scale,
        plant_vote=config.plant_vote,
        tta=config.tta,
        # ONNX Runtime's threads sleep between operators instead of spinning, leaving CPU to
        # the decode and write threads: pipeline/bare 0.81 -> 0.86 on 2 cores (RESULTS.md)
        spinning=False,
    )


def run_local(
    items: list[SourceItem],
    predictor: Predictor,
    config: PredictConfig,
    state: RunState,
    speed: Speed,
    advance: Callable[[], None],
) -> None:
    """Decode (threads) -> predict (`stream_count` threads) -> write (threads), bounded.

    With several streams, that many images are in the model at once, each one ONNX Runtime run
    on its own thread: on a CPU this keeps each run's threads off the cores that decode and
    write, instead of one run on all cores that any decode preempts (RESULTS.md).
    """
    out = state.out
    depth = 2 * config.workers + 2
    streams = stream_count(config)

    def fail(item: SourceItem, exc: BaseException) -> None:
        state.save_error(item, failure_reason(exc))
        advance()

    def finish(loaded: LoadedImage, prediction) -> None:
        try:
            row, written = write_outputs(loaded, prediction, predictor.classes, config, out)
            state.save_done(loaded.item, row, written, config.save)
            advance()
        except Exception as exc:  # a failed write is reported like a bad input
            fail(loaded.item, exc)

    source = iter(items)
    with (
        ThreadPoolExecutor(config.workers, thread_name_prefix="decode") as readers,
        ThreadPoolExecutor(streams, thread_name_prefix="model") as models,
        ThreadPoolExecutor(config.workers, thread_name_prefix="write") as writers,
    ):

        def predict_one(item: SourceItem, decoded: Future) -> Future | None:
            """Predict one decoded image and hand it to a writer (None when it failed)."""
            try:
                loaded = decoded.result()
                prediction = predictor.predict(loaded.image)
            except Exception as exc:  # corrupt or unreadable input: report it, go on
                fail(item, exc)
                return None
            speed.add(prediction.timings_ms)
            return writers.submit(finish, loaded, prediction)

        decoding: deque[tuple[SourceItem, Future]] = deque()
        predicting: deque[Future] = deque()
        writing: deque[Future] = deque()

        def refill() -> None:
            while len(decoding) < depth and (item := next(source, None)) is not None:
                decoding.append((item, readers.submit(load_input, item, config.bands)))

        refill()
        while decoding or predicting:
            while decoding and len(predicting) < streams:
                predicting.append(models.submit(predict_one, *decoding.popleft()))
                refill()
            if (written := predicting.popleft().result()) is not None:
                writing.append(written)
            while len(writing) > depth:
                writing.popleft().result()
        for future in writing:
            future.result()


def _save_config(config: PredictConfig, out: Path, model: str) -> None:
    """Append this run (time, model, config) to predict.yaml's `runs`, keeping the earlier ones."""
    path = out / CONFIG_FILE
    runs = _previous_runs(path)
    plain = json.loads(json.dumps(config.to_dict()))  # tuples -> lists for YAML
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    runs.append({"started": started, "model_sha256": model, "config": plain})
    write_atomic(path, yaml.safe_dump({"runs": runs}, sort_keys=False))


def _previous_runs(path: Path) -> list[dict]:
    """The runs an existing predict.yaml records (one config: written before runs were kept)."""
    if not path.is_file():
        return []
    try:
        saved = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise WeedsegError(f"{path}: unreadable ({exc}); move it away to start anew") from exc
    if isinstance(saved, dict) and isinstance(saved.get("runs"), list):
        return saved["runs"]
    return [{"config": saved}]


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def _config_line(config: PredictConfig) -> str:
    """The settings that differ from the defaults, as `key=value` pairs."""
    defaults = PredictConfig(source="", model="", out="")
    changed = {
        k: v
        for k, v in config.to_dict().items()
        if k in ("source", "model", "out") or v != getattr(defaults, k)
    }
    return " ".join(f"{k}={v}" for k, v in changed.items())


def run_predict(config: PredictConfig, predictor: Predictor | None = None) -> int:
    """Run `weedseg predict`; returns the exit code (1 when any input failed)."""
    from tqdm import tqdm

    from weedseg.predict.geo import is_georeferenced, predict_orthomosaic

    out = Path(config.out)
    found = expand_sources(config.source, config.include, config.exclude)
    items = [i for i in found if not _inside(i.path, out)]  # our own outputs are no inputs
    if not items:
        raise WeedsegError(f"{config.source}: no images found")
    manifest = read_manifest(config.model)
    model = sha256_file(Path(config.model) / MANIFEST_FILE)
    state = RunState(out, model=model, settings=config.output_settings())
    if config.resume and not config.force:
        different = state.made_differently_items(items)
        if different:
            item, how = different[0]
            raise WeedsegError(
                f"--resume: {len(different)} image(s) in {out} were made with another model or "
                f"other output settings (e.g. {item.rel}: {how}); add --force to redo them, or "
                "choose another --out"
            )
    out.mkdir(parents=True, exist_ok=True)
    _save_config(config, out, model)
    print(f"weedseg predict: {_config_line(config)}")
    if len(found) > len(items):
        print(f"{len(found) - len(items)} images under --out {out} left out of the sources")
    todo = [i for i in items if not (config.resume and state.is_settled(i, config.save))]
    skipped = len(items) - len(todo)
    print(
        f"{len(items)} images"
        + (f", {skipped} already done (--resume)" if skipped else "")
        + f", {len(todo)} to process"
    )
    geo_items = [i for i in todo if is_georeferenced(i.path)]
    geo_rels = {i.rel for i in geo_items}
    plain_items = [i for i in todo if i.rel not in geo_rels]
    local = bool(plain_items) and not config.ray
    if local or geo_items:
        predictor = predictor or make_predictor(config)
        print(f"Model: {predictor.describe()}")
    speed = Speed()
    started = time.perf_counter()
    if todo:
        with tqdm(total=len(todo), unit="img", desc="predict", dynamic_ncols=True) as bar:
            lock = threading.Lock()

            def advance() -> None:
                with lock:
                    bar.update(1)

            if plain_items and config.ray:
                from weedseg.predict.ray_runner import run_ray

                run_ray(plain_items, config, state, speed, advance)
            if local:
                run_local(plain_items, predictor, config, state, speed, advance)
            for item in geo_items:
                try:
                    row, written, timings = predict_orthomosaic(item, predictor, config, out)
                    state.save_done(item, row, written, config.save)
                    speed.add(timings)
                except Exception as exc:  # a broken GeoTIFF is reported like any bad input
                    state.save_error(item, failure_reason(exc))
                advance()
    elapsed = time.perf_counter() - started
    names = [c.name for c in manifest.classes]
    done, failed = state.write_tables(items, names, summary="csv" in config.save)
    if speed.images:
        print(speed.line())
        print(f"{speed.images} images in {elapsed:.1f}s ({speed.images / elapsed:.2f} images/s)")
    tables = f"{SUMMARY_FILE}, " if "csv" in config.save else ""
    print(f"Results saved to {out} ({tables}{ERRORS_FILE}): {done} done, {failed} failed")
    return 1 if failed else 0
