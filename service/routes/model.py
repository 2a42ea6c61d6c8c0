"""GET /v1/model: the model serving and its bundle manifest (server paths only with a key)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from weedseg.service.deps import HandleDep, SettingsDep, is_authenticated, require_api_key
from weedseg.service.schemas import ErrorBody, ModelOut

# What a client without a key sees of the manifest: what the model is and takes. Provenance,
# export verification, INT8 calibration and engine entries name folders on the build machine.
PUBLIC_MANIFEST_FIELDS = frozenset(
    {
        "format_version",
        "model_name",
        "arch",
        "classes",
        "mean",
        "std",
        "input",
        "outputs",
        "tile",
        "input_scale",
        "plant_vote",
        "opset",
        "producer",
        "files",
        "metrics",
    }
)

router = APIRouter(tags=["model"], dependencies=[Depends(require_api_key)])


@router.get(
    "/v1/model",
    summary="The served model and its manifest",
    response_model=ModelOut,
    responses={401: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def get_model(request: Request, handle: HandleDep, settings: SettingsDep) -> ModelOut:
    manifest = handle.predictor.manifest.model_dump(mode="json")
    if is_authenticated(request, settings):
        return ModelOut(
            version=handle.version,
            bundle=handle.bundle_path,
            loaded_at=handle.loaded_at,
            manifest=manifest,
        )
    public = {k: v for k, v in manifest.items() if k in PUBLIC_MANIFEST_FIELDS}
    return ModelOut(
        version=handle.version, bundle=None, loaded_at=handle.loaded_at, manifest=public
    )
