"""The path every prediction request takes: read the upload, decode off the loop, batch, predict."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from starlette.requests import Request
from weedseg.service import uploads
from weedseg.service.batcher import BatchResult, MicroBatcher, QueueFullError
from weedseg.service.errors import ApiError, not_ready, overloaded
from weedseg.service.inflight import Ticket
from weedseg.service.settings import Settings

from weedseg.errors import WeedsegError


@dataclass
class Segmented:
    image: np.ndarray  # [H, W, 3] uint8 RGB as decoded
    result: BatchResult
    timings_ms: dict[str, float]

    @property
    def labels(self) -> np.ndarray:  # [H, W] uint8 class ids
        return self.result.prediction.labels


async def segment_upload(
    request: Request,
    settings: Settings,
    batcher: MicroBatcher,
    ticket: Ticket,
    plant_vote: bool | None = None,
) -> Segmented:
    """Predict the uploaded image (`plant_vote`: one class per plant region, None: the model's
    default); raises ApiError for bad input, overload or no model.

    `ticket` holds this image's place among those in flight until the answer is sent; its
    decoded size is reserved from the header, before any pixel is decoded (in the limiter's
    own decode threads).
    """
    if batcher.handle is None:
        raise not_ready()
    if batcher.depth >= batcher.queue_limit:  # refuse before spending time on the upload
        raise overloaded(retry_after_s=1)
    started = time.perf_counter()
    with batcher.arrival():
        data = await uploads.read_upload(request, settings.max_upload_bytes)
        read_done = time.perf_counter()
        header = await ticket.limiter.decode(uploads.probe, data, settings.max_pixels)
        ticket.reserve(header.decoded_bytes)
        image = await ticket.limiter.decode(uploads.decode, data, settings.max_pixels, header)
        del data  # the encoded bytes are no longer needed while the image waits for the model
        decoded = time.perf_counter()
    try:
        result = await batcher.submit(image, plant_vote)
    except QueueFullError as exc:
        raise overloaded(retry_after_s=1) from exc
    except WeedsegError as exc:  # the model refused this image (anything else is a 500)
        raise ApiError(422, "cannot_segment", str(exc)) from exc
    timings = {
        "read": (read_done - started) * 1000.0,
        "decode": (decoded - read_done) * 1000.0,
        "queue": result.queue_ms,
        **{k: float(v) for k, v in result.prediction.timings_ms.items()},
    }
    return Segmented(image, result, timings)


def timing_headers(segmented: Segmented, extra_ms: dict[str, float]) -> dict[str, str]:
    """Server-Timing (shown by browsers' dev tools) and the model version."""
    timings = {**segmented.timings_ms, **extra_ms}
    return {
        "Server-Timing": ", ".join(f"{k};dur={v:.2f}" for k, v in timings.items()),
        "X-Weedseg-Model": segmented.result.handle.version,
        "X-Weedseg-Batch-Size": str(segmented.result.batch_size),
    }
