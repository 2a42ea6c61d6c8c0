"""The FastAPI application factory: `create_app(settings)` wires settings, batcher and routes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import cv2
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from PIL import Image
from weedseg.service.batcher import MicroBatcher
from weedseg.service.errors import install_error_handlers
from weedseg.service.inflight import InFlightLimiter
from weedseg.service.loading import load_handle
from weedseg.service.metrics import Metrics, MetricsMiddleware
from weedseg.service.routes import admin, health, lanes, metrics, model, page, segment
from weedseg.service.settings import Settings

from weedseg import __version__

log = logging.getLogger("weedseg.service")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the model is loaded (and warmed up) when the app starts."""
    settings = settings or Settings()
    # Pillow's own decompression-bomb guard follows ours (it errors at twice this).
    Image.MAX_IMAGE_PIXELS = settings.max_pixels
    # Broken uploads are answered with 400s; OpenCV need not also warn about each on stderr.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    app_metrics = Metrics()
    batcher = MicroBatcher(
        settings.batch_size,
        settings.max_queue_wait_ms,
        settings.queue_limit,
        on_batch=app_metrics.observe_batch,
    )
    app_metrics.queue_depth.set_function(lambda: batcher.depth)
    limiter = InFlightLimiter(
        settings.max_images_in_flight, settings.max_decoded_bytes, settings.decode_threads
    )
    app_metrics.images_in_flight.set_function(lambda: limiter.images)
    app_metrics.decoded_bytes_in_flight.set_function(lambda: limiter.bytes)

    async def load_initial_model(app: FastAPI) -> None:
        """Load in the background: /healthz answers at once, /readyz once the model is warm."""
        try:
            handle = await asyncio.to_thread(load_handle, settings.bundle, settings)
        except Exception as exc:  # noqa: BLE001 - reported by /readyz and the log
            app.state.load_error = f"{settings.bundle}: {exc}"
            log.exception("cannot load %s", settings.bundle)
            return
        batcher.swap(handle)
        app_metrics.set_model(handle.version)
        log.info("serving %s from %s", handle.version, handle.bundle_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        loading = None
        if settings.bundle is not None:
            loading = asyncio.create_task(load_initial_model(app), name="weedseg-load")
        try:
            yield
        finally:
            if loading is not None:
                loading.cancel()
            await batcher.stop()
            limiter.shutdown()
            if batcher.handle is not None:  # no batch runs any more
                batcher.handle.predictor.close()

    app = FastAPI(
        title="weedseg",
        version=__version__,
        summary="Crop / weed / soil segmentation for field robots",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.batcher = batcher
    app.state.metrics = app_metrics
    app.state.limiter = limiter
    app.state.reload_lock = asyncio.Lock()
    app.state.load_error = None
    install_error_handlers(app)
    for router in (segment, lanes, model, health, metrics, admin, page):
        app.include_router(router.router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-API-Key", "Authorization"],
            expose_headers=["Server-Timing", "X-Weedseg-Model", "X-Weedseg-Classes"],
        )
    app.add_middleware(MetricsMiddleware, metrics=app_metrics)
    return app
