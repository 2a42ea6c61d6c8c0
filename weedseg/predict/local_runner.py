"""Plain images through a bounded local pipeline: decode threads -> the model (`--streams`
threads) -> writer threads, so reading and writing overlap inference and memory stays flat."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from weedseg.infer.predictor import Predictor
from weedseg.predict.config import PredictConfig
from weedseg.predict.outputs import LoadedImage, load_input, write_outputs
from weedseg.predict.records import RunState
from weedseg.predict.sources import SourceItem
from weedseg.predict.worker import Speed, failure_reason, stream_count


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
