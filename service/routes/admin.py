"""POST /v1/admin/reload: load a new bundle, warm it up, swap it in without dropping requests."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request
from weedseg.service.deps import BatcherDep, MetricsDep, SettingsDep, require_admin_key
from weedseg.service.errors import ApiError, bad_parameter
from weedseg.service.loading import load_handle
from weedseg.service.schemas import ErrorBody, ReloadRequest, ReloadResponse
from weedseg.service.settings import Settings

router = APIRouter(tags=["admin"], dependencies=[Depends(require_admin_key)])


def resolve_bundle(requested: str | None, settings: Settings) -> Path:
    """The bundle folder to load: the configured one when none is named (its symlink, if it is
    one, is followed when loading); a named one must stay inside the reload root."""
    if requested is None:
        if settings.bundle is None:
            raise bad_parameter("the server has no configured bundle; name one in the request body")
        return settings.bundle
    root = settings.bundle_root
    if root is None:
        raise bad_parameter("the server has no reload root (set WEEDSEG_RELOAD_ROOT)")
    root = root.resolve()
    path = (root / requested).resolve()
    if path != root and root not in path.parents:
        raise bad_parameter(f"bundle {requested!r} is outside the reload root")
    return path


@router.post(
    "/v1/admin/reload",
    summary="Load, warm up and swap in a bundle; the old model serves until the swap",
    response_model=ReloadResponse,
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
async def reload_model(
    request: Request,
    settings: SettingsDep,
    batcher: BatcherDep,
    metrics: MetricsDep,
    body: Annotated[ReloadRequest | None, Body()] = None,
) -> ReloadResponse:
    path = resolve_bundle(body.bundle if body else None, settings)
    lock: asyncio.Lock = request.app.state.reload_lock
    async with lock:
        started = time.perf_counter()
        try:
            # Loaded in a side thread: the serving model keeps answering meanwhile.
            handle = await asyncio.to_thread(load_handle, path, settings)
        except Exception as exc:  # noqa: BLE001 - whatever breaks the new bundle, keep the old
            metrics.reloads.labels("refused").inc()
            detail = f"{path}: {exc}; the previous model keeps serving"
            raise ApiError(422, "bad_bundle", detail) from exc
        previous = batcher.swap(handle)
        if previous is not None:
            await batcher.retire(previous)  # frees its session once its last batch is done
    metrics.reloads.labels("ok").inc()
    metrics.set_model(handle.version)
    return ReloadResponse(
        previous=previous.version if previous else None,
        current=handle.version,
        load_ms=round((time.perf_counter() - started) * 1000.0, 1),
    )
