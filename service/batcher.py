"""Micro-batching: concurrent requests are run together as one model batch in a worker thread.

The event loop only queues work and awaits futures, so health checks and metrics stay instant
while the model runs. A batch is dispatched when it is full, when its oldest request has waited
`max_wait_ms`, or at once when no other request is on its way (being read or decoded), so a
lone robot never pays the batching wait. The queue is bounded: a full queue is refused at once
(the route answers 503).

The model lives in a `ModelHandle`; reload swaps the handle between batches. Each batch takes
the handle once when it starts, so requests already running finish on the model they began with;
`retire` then closes the old model (its ONNX Runtime session, or a TensorRT engine's device
buffers and stream) once no batch uses it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger("weedseg.service")


@dataclass(frozen=True)
class ModelHandle:
    """A loaded predictor and what identifies it (shown in /v1/model, headers and metrics)."""

    predictor: Any  # weedseg.infer.Predictor (anything with predict_batch and manifest)
    bundle_path: str
    version: str  # model name + model.onnx sha256 prefix
    loaded_at: float = field(default_factory=time.time)


class QueueFullError(Exception):
    """The bounded queue is full: the caller should answer 503 with Retry-After."""


@dataclass
class BatchResult:
    """One request's prediction plus how long it queued and which model answered."""

    prediction: Any  # weedseg.infer.Prediction
    handle: ModelHandle
    queue_ms: float
    batch_size: int


@dataclass
class _Job:
    image: np.ndarray  # [H, W, 3] uint8 RGB
    future: asyncio.Future
    enqueued: float
    plant_vote: bool | None = None  # one class per plant region; None: the model's default


BatchObserver = Callable[[int, float], None]  # (batch size, inference seconds)


class MicroBatcher:
    """Gathers queued images into batches and runs them on the current model off the loop."""

    def __init__(
        self,
        batch_size: int,
        max_wait_ms: float,
        queue_limit: int,
        on_batch: BatchObserver | None = None,
    ) -> None:
        self.batch_size = batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.queue_limit = queue_limit
        self.on_batch = on_batch
        self.handle: ModelHandle | None = None
        self.arriving = 0  # requests being read/decoded that will be submitted soon
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task | None = None
        self._batch_lock = asyncio.Lock()  # held while a batch runs on the handle it took
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="weedseg-infer")

    @property
    def depth(self) -> int:
        """Requests waiting for a batch (not counting the one running)."""
        return self._queue.qsize() if self._queue is not None else 0

    @contextmanager
    def arrival(self) -> Iterator[None]:
        """Mark a request as on its way (while its body is read and decoded)."""
        self.arriving += 1
        try:
            yield
        finally:
            self.arriving -= 1

    def swap(self, handle: ModelHandle) -> ModelHandle | None:
        """Serve `handle` from the next batch on; returns the previous one."""
        previous, self.handle = self.handle, handle
        return previous

    async def retire(self, handle: ModelHandle) -> None:
        """Close a swapped-out model once the batch running on it (if any) has finished."""
        async with self._batch_lock:  # a batch that starts after this reads the new handle
            await self.run_in_worker(handle.predictor.close)

    def start(self) -> None:
        self._queue = asyncio.Queue(maxsize=self.queue_limit)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="weedseg-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def submit(self, image: np.ndarray, plant_vote: bool | None = None) -> BatchResult:
        """Queue one image and wait for its prediction; QueueFullError when the queue is full."""
        if self._queue is None:
            raise RuntimeError("batcher not started")
        future = asyncio.get_running_loop().create_future()
        job = _Job(image, future, time.perf_counter(), plant_vote)
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull as exc:
            raise QueueFullError from exc
        return await job.future

    async def run_in_worker(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the inference thread, between batches (used to warm up a new model)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _gather(self) -> list[_Job]:
        """The next batch: up to batch_size jobs, waiting at most max_wait after the oldest."""
        assert self._queue is not None
        jobs = [await self._queue.get()]
        deadline = jobs[0].enqueued + self.max_wait_s
        while len(jobs) < self.batch_size:
            try:
                jobs.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or self.arriving == 0:
                break
            try:
                jobs.append(await asyncio.wait_for(self._queue.get(), remaining))
            except asyncio.TimeoutError:  # noqa: UP041 - a distinct class on JetPack's Python 3.10
                break
        return jobs

    async def _run(self) -> None:
        while True:
            jobs = await self._gather()
            jobs = [j for j in jobs if not j.future.done()]  # skip requests already cancelled
            if jobs:
                async with self._batch_lock:
                    await self._run_batch(jobs)

    async def _run_batch(self, jobs: list[_Job]) -> None:
        """Predict `jobs` on the current model and settle their futures."""
        loop = asyncio.get_running_loop()
        handle = self.handle
        started = time.perf_counter()
        if handle is None:
            for job in jobs:
                job.future.set_exception(RuntimeError("no model loaded"))
            return
        images = [j.image for j in jobs]
        votes = [j.plant_vote for j in jobs]
        predict = handle.predictor.predict_batch
        try:
            run = functools.partial(predict, images, plant_vote=votes)
            outcomes = await loop.run_in_executor(self._executor, run)
        except Exception as exc:  # noqa: BLE001 - one bad image must fail only itself
            if len(jobs) == 1:
                outcomes = [exc]
            else:
                log.warning("batch of %d failed (%s); running it image by image", len(jobs), exc)
                outcomes = [
                    await self._run_alone(predict, image, vote)
                    for image, vote in zip(images, votes, strict=True)
                ]
        seconds = time.perf_counter() - started
        if self.on_batch is not None:
            self.on_batch(len(jobs), seconds)
        for job, outcome in zip(jobs, outcomes, strict=True):
            if job.future.done():
                continue
            if isinstance(outcome, Exception):
                job.future.set_exception(outcome)
            else:
                queue_ms = (started - job.enqueued) * 1000.0
                job.future.set_result(BatchResult(outcome, handle, queue_ms, len(jobs)))

    async def _run_alone(
        self, predict: Callable, image: np.ndarray, plant_vote: bool | None
    ) -> Any:
        """One image's prediction, or the exception it raised."""
        run = functools.partial(predict, [image], plant_vote=[plant_vote])
        try:
            [prediction] = await asyncio.get_running_loop().run_in_executor(self._executor, run)
        except Exception as exc:  # noqa: BLE001 - handed to that request's future
            return exc
        return prediction
