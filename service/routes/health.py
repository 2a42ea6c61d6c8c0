"""Liveness and readiness probes (never touch the model, so they answer instantly under load)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from weedseg.service.deps import BatcherDep, SettingsDep, is_authenticated
from weedseg.service.errors import not_ready
from weedseg.service.schemas import ErrorBody, Health

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers", response_model=Health)
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Readiness: a model is loaded and warmed up",
    response_model=Health,
    responses={503: {"model": ErrorBody}},
)
async def readyz(request: Request, batcher: BatcherDep, settings: SettingsDep) -> Health:
    if batcher.handle is None:
        error = request.app.state.load_error
        if error is None:
            raise not_ready("the model is loading")
        if not is_authenticated(request, settings):  # the reason names files on the server
            raise not_ready("the model failed to load (the server log, or a key, says why)")
        raise not_ready(f"the model failed to load: {error}")
    return Health(status="ready", model=batcher.handle.version)
