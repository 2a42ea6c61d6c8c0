"""`weedseg predict --ray [ADDRESS]`: the same per-image work on a Ray Data actor pool.

Each actor loads one Predictor (a GPU each when the cluster has GPUs) and, per image, decodes,
predicts and writes the outputs itself, exactly as the local pipeline does (both take what they
share from `weedseg.predict.worker`); the driver keeps the records and writes summary.csv /
errors.csv. On a multi-node cluster every node needs weedseg installed and OUT, the inputs and
the bundle on a filesystem it sees.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from weedseg.errors import WeedsegError
from weedseg.predict.config import PredictConfig
from weedseg.predict.outputs import load_input, write_outputs
from weedseg.predict.records import RunState
from weedseg.predict.sources import SourceItem
from weedseg.predict.worker import Speed, failure_reason, make_predictor


class PredictActor:
    """A Ray Data callable class: one Predictor, many batches of image paths."""

    def __init__(self, config: PredictConfig) -> None:
        self.config = config
        self.out = Path(config.out)
        self.predictor = make_predictor(config)

    def _one(self, item: SourceItem) -> dict:
        try:
            loaded = load_input(item, self.config.bands)
            prediction = self.predictor.predict(loaded.image)
            row, written = write_outputs(
                loaded, prediction, self.predictor.classes, self.config, self.out
            )
        except Exception as exc:  # reported in errors.csv by the driver, like the local run
            return {"status": "error", "reason": failure_reason(exc)}
        return {
            "status": "done",
            "row": row,
            "outputs": [str(p) for p in written],
            "timings": prediction.timings_ms,
        }

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = [
            json.dumps(self._one(SourceItem(Path(path), str(rel))))
            for path, rel in zip(batch["path"], batch["rel"], strict=True)
        ]
        return {"rel": batch["rel"], "result": np.array(results, dtype=object)}


def run_ray(
    items: list[SourceItem],
    config: PredictConfig,
    state: RunState,
    speed: Speed,
    advance: Callable[[], None],
) -> None:
    """Predict `items` on a Ray actor pool of `config.workers` actors; record every result."""
    try:
        import ray
    except ImportError as exc:
        raise WeedsegError("--ray needs Ray: pip install 'weedseg[ray]'") from exc

    if not ray.is_initialized():
        address = None if config.ray == "local" else config.ray
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    by_rel = {item.rel: item for item in items}
    dataset = ray.data.from_items([{"path": str(i.path), "rel": i.rel} for i in items])
    results = dataset.map_batches(
        PredictActor,
        fn_constructor_kwargs={"config": config},
        batch_size=max(1, config.batch),
        compute=ray.data.ActorPoolStrategy(size=config.workers),
        num_cpus=0 if gpus else 1,
        num_gpus=gpus,
    )
    for record in results.iter_rows():
        item = by_rel[str(record["rel"])]
        result = json.loads(record["result"])
        if result["status"] == "done":
            outputs = [Path(p) for p in result["outputs"]]
            state.save_done(item, result["row"], outputs, config.save)
            speed.add(result["timings"])
        else:
            state.save_error(item, result["reason"])
        advance()
