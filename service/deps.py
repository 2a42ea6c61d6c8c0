"""Dependencies the routes declare: settings, the batcher (model handle) and API-key checks."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from service.batcher import MicroBatcher, ModelHandle
from service.errors import not_ready, unauthorized
from service.metrics import Metrics
from service.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_batcher(request: Request) -> MicroBatcher:
    return request.app.state.batcher


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


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
    """Constant-time comparison against every configured key (no early exit)."""
    given = key.encode()
    matched = False
    for candidate in keys:
        matched |= hmac.compare_digest(given, candidate.encode())
    return matched


def require_api_key(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> None:
    """401 unless a configured key is presented; open when no keys are configured."""
    if not settings.api_keys:
        return
    key = presented_key(request)
    if key is None:
        raise unauthorized("this server needs an API key (X-API-Key header)")
    if not key_matches(key, settings.api_keys):
        raise unauthorized("the API key is not valid")


def require_admin_key(
    request: Request, settings: Annotated[Settings, Depends(get_settings)]
) -> None:
    """Admin routes always need a key: without configured keys they are disabled (401)."""
    if not settings.api_keys:
        raise unauthorized("admin routes are disabled: start the server with WEEDSEG_API_KEYS")
    require_api_key(request, settings)


SettingsDep = Annotated[Settings, Depends(get_settings)]
BatcherDep = Annotated[MicroBatcher, Depends(get_batcher)]
HandleDep = Annotated[ModelHandle, Depends(get_handle)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
