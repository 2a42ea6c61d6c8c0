"""GET /v1/model: which model is serving, and its bundle manifest."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from service.deps import HandleDep, require_api_key
from service.schemas import ErrorBody, ModelOut

router = APIRouter(tags=["model"], dependencies=[Depends(require_api_key)])


@router.get(
    "/v1/model",
    summary="The served model and its manifest",
    response_model=ModelOut,
    responses={401: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def get_model(handle: HandleDep) -> ModelOut:
    manifest = handle.predictor.manifest.model_dump(mode="json")
    return ModelOut(
        version=handle.version,
        bundle=handle.bundle_path,
        loaded_at=handle.loaded_at,
        manifest=manifest,
    )
