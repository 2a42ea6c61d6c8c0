"""The `weedseg predict` run: expand sources, skip finished work, predict, report.

Plain images go through the local pipeline (`weedseg.predict.local_runner`) or, with `--ray`, a
Ray actor pool (`weedseg.predict.ray_runner`); GeoTIFF orthomosaics are read window by window
(`weedseg.predict.geo`). Every run is recorded in OUT/predict.yaml.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import yaml

from weedseg.atomic import write_atomic
from weedseg.bundle import MANIFEST_FILE, read_manifest, sha256_file
from weedseg.errors import WeedsegError
from weedseg.infer.predictor import Predictor
from weedseg.predict.config import PredictConfig
from weedseg.predict.local_runner import run_local
from weedseg.predict.ray_runner import run_ray
from weedseg.predict.records import ERRORS_FILE, SUMMARY_FILE, RunState
from weedseg.predict.sources import expand_sources
from weedseg.predict.worker import Speed, failure_reason, make_predictor

CONFIG_FILE = "predict.yaml"


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
