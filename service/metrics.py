"""Prometheus metrics: requests by route and status, latency, queue depth, batches, model version.

Each app owns its registry (tests build many apps); `MetricsMiddleware` is plain ASGI so it also
sees answers produced before a route runs (404, 405, 413 from the body limit).
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)


class Metrics:
    """The service's collectors, registered on a private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "weedseg_requests", "HTTP requests answered", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "weedseg_request_duration_seconds",
            "Time from request start to the end of the answer",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "weedseg_queue_depth", "Requests waiting for an inference batch", registry=r
        )
        self.images_in_flight = Gauge(
            "weedseg_images_in_flight",
            "Images being read, decoded, queued, run or answered",
            registry=r,
        )
        self.decoded_bytes_in_flight = Gauge(
            "weedseg_decoded_bytes_in_flight",
            "Decoded size of the images in flight (from their headers)",
            registry=r,
        )
        self.batch_size = Histogram(
            "weedseg_batch_size", "Images per inference batch", buckets=BATCH_BUCKETS, registry=r
        )
        self.inference = Histogram(
            "weedseg_batch_inference_seconds",
            "Model time per batch",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_info = Gauge(
            "weedseg_model_info", "The model being served (value 1)", ["version"], registry=r
        )
        self.reloads = Counter(
            "weedseg_model_reloads", "Model reload attempts", ["outcome"], registry=r
        )

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.inference.observe(seconds)

    def set_model(self, version: str) -> None:
        self.model_info.clear()
        self.model_info.labels(version=version).set(1)


class MetricsMiddleware:
    """Counts and times every HTTP request under its route template (not the raw path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(name, scope["method"], str(status)).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - started)
