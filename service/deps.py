"""Dependencies the routes declare: settings, the batcher (model handle) and API-key checks."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from weedseg.service.batcher import MicroBatcher, ModelHandle
from weedseg.service.errors import forbidden, not_ready, unauthorized
from weedseg.service.inflight import InFlightLimiter, Ticket
from weedseg.service.metrics import Metrics
from weedseg.service.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_batcher(request: Request) -> MicroBatcher:
    return request.app.state.batcher


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_limiter(request: Request) -> InFlightLimiter:
    return request.app.state.limiter


async def image_ticket(
    limiter: Annotated[InFlightLimiter, Depends(get_limiter)],
) -> AsyncIterator[Ticket]:
    """A place among the images in flight (503 when none is free), held until the answer is
    sent: its class map and encoded answer count as much as its decoding. Async, so the
    counting stays on the event loop's thread."""
    ticket = limiter.admit()
    try:
        yield ticket
    finally:
        ticket.release()


def get_handle(batcher: Annotated[MicroBatcher, Depends(get_batcher)]) -> ModelHandle:
    """The model serving right now; 503 until one is loaded."""
    if batcher.handle is None:
        raise not_ready()
    return batcher.handle


def presented_key(request: Request) -> str | None:
    """The key from `X-API-Key` or `Authorization: Bearer <key>`."""
    key = request.headers.get("x-api-key")
    if key:
        return key
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def key_matches(key: str, keys: list[str]) -> bool:
    """Constant-time comparison against every configured key (no early exit; digests of equal
    length, so not even the key's length leaks)."""
    given = hashlib.sha256(key.encode()).digest()
    matched = False
    for candidate in keys:
        matched |= hmac.compare_digest(given, hashlib.sha256(candidate.encode()).digest())
    return matched


def is_authenticated(request: Request, settings: Settings) -> bool:
    """Whether the request presents a valid robot or admin key (then it may see file paths)."""
    key = presented_key(request)
    return key is not None and key_matches(key, [*settings.api_keys, *settings.admin_keys])


def require_api_key(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> None:
    """401 unless a robot or admin key is presented; open when no robot keys are configured."""
    if not settings.api_keys:
        return
    key = presented_key(request)
    if key is None:
        raise unauthorized("this server needs an API key (X-API-Key header)")
    if not key_matches(key, [*settings.api_keys, *settings.admin_keys]):
        raise unauthorized("the API key is not valid")


def require_admin_key(
    request: Request, settings: Annotated[Settings, Depends(get_settings)]
) -> None:
    """Admin routes need an admin key: 401 without one (or when none is configured, which
    disables them), 403 for a robot key."""
    if not settings.admin_keys:
        raise unauthorized("admin routes are disabled: start the server with WEEDSEG_ADMIN_KEYS")
    key = presented_key(request)
    if key is None:
        raise unauthorized("admin routes need an admin key (X-API-Key header)")
    if key_matches(key, settings.admin_keys):
        return
    if key_matches(key, settings.api_keys):
        raise forbidden("this is a robot key: admin routes need a key from WEEDSEG_ADMIN_KEYS")
    raise unauthorized("the API key is not valid")


SettingsDep = Annotated[Settings, Depends(get_settings)]
BatcherDep = Annotated[MicroBatcher, Depends(get_batcher)]
HandleDep = Annotated[ModelHandle, Depends(get_handle)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
TicketDep = Annotated[Ticket, Depends(image_ticket)]
