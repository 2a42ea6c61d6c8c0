"""Bounded work in flight: how many images are read, decoded, queued or run at once, and how big.

Every image request takes a `Ticket` before its body is read and gives it back once its answer
is sent. A ticket first counts against `max_images`; once the image header has been read it
also reserves the decoded size (width x height x channels x bytes per sample) against
`max_bytes`, before a single pixel is decoded. Either limit answers 503 with `Retry-After` at
once, so a burst of large frames costs refusals, not memory. One image is always admitted when
no other holds bytes (the pixel limit bounds it). Decoding runs in this object's own bounded
thread pool, not the event loop's default one.

All counting happens on the event loop's thread, so it needs no lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from weedseg.service.errors import overloaded

T = TypeVar("T")


class InFlightLimiter:
    """Admits image requests while fewer than `max_images` and `max_bytes` decoded are in flight."""

    def __init__(
        self, max_images: int, max_bytes: int, decode_threads: int, retry_after_s: int = 1
    ) -> None:
        self.max_images = max_images
        self.max_bytes = max_bytes
        self.retry_after_s = retry_after_s
        self.images = 0
        self.bytes = 0
        self._decoder = ThreadPoolExecutor(decode_threads, thread_name_prefix="weedseg-decode")

    def admit(self) -> Ticket:
        """A ticket for one more image; 503 when `max_images` are already in flight."""
        if self.images >= self.max_images:
            raise overloaded(
                self.retry_after_s, f"{self.images} images are already being processed"
            )
        self.images += 1
        return Ticket(self)

    async def decode(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the decode pool (at most `decode_threads` at once)."""
        return await asyncio.get_running_loop().run_in_executor(self._decoder, fn, *args)

    def shutdown(self) -> None:
        self._decoder.shutdown(wait=False, cancel_futures=True)


class Ticket:
    """One admitted image: its place in the count and, once its header is read, its bytes."""

    def __init__(self, limiter: InFlightLimiter) -> None:
        self.limiter = limiter
        self.bytes = 0
        self._released = False

    def reserve(self, nbytes: int) -> None:
        """Hold `nbytes` of decoded image; 503 when they do not fit beside the others."""
        limiter = self.limiter
        others = limiter.bytes - self.bytes
        if others and others + nbytes > limiter.max_bytes:
            raise overloaded(
                limiter.retry_after_s,
                f"{others // 2**20} MiB of decoded images are already being processed "
                f"(limit {limiter.max_bytes // 2**20} MiB); this one needs {nbytes // 2**20} MiB",
            )
        limiter.bytes += nbytes - self.bytes
        self.bytes = nbytes

    def release(self) -> None:
        """Give back the count and the bytes (idempotent)."""
        if self._released:
            return
        self._released = True
        self.limiter.images -= 1
        self.limiter.bytes -= self.bytes
        self.bytes = 0
