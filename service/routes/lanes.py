"""POST /v1/segment/lanes: spray on/off per vertical lane, for boom sprayers (OWL-style)."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, Response
from weedseg.service.deps import BatcherDep, SettingsDep, TicketDep, require_api_key
from weedseg.service.errors import bad_parameter
from weedseg.service.routes.openapi import IMAGE_BODY, IMAGE_ERRORS
from weedseg.service.schemas import Lane, LanesResponse
from weedseg.service.segment_request import segment_upload, timing_headers

router = APIRouter(tags=["segment"], dependencies=[Depends(require_api_key)])


def lane_decisions(
    weed: np.ndarray, lanes: int, band: tuple[int, int], threshold: float
) -> list[Lane]:
    """weed [H, W] bool -> per-lane weed fraction inside rows `band`, and spray if >= threshold."""
    rows = weed[band[0] : band[1]]  # [h_band, W]
    width = weed.shape[1]
    edges = np.linspace(0, width, lanes + 1).round().astype(int)
    out = []
    for i in range(lanes):
        x0, x1 = int(edges[i]), int(edges[i + 1])
        cells = rows[:, x0:x1]
        fraction = float(cells.mean()) if cells.size else 0.0
        spray = bool(cells.size) and fraction >= threshold and bool(cells.any())
        out.append(Lane(index=i, x_start=x0, x_end=x1, weed_fraction=fraction, spray=spray))
    return out


@router.post(
    "/v1/segment/lanes",
    summary="Spray decision per vertical lane of the frame",
    response_model=LanesResponse,
    responses=IMAGE_ERRORS,
    openapi_extra=IMAGE_BODY,
)
async def segment_lanes(
    request: Request,
    settings: SettingsDep,
    batcher: BatcherDep,
    ticket: TicketDep,
    lanes: Annotated[int, Query(ge=1, le=256, description="Number of nozzle lanes")] = 8,
    band_start: Annotated[
        float, Query(ge=0, le=1, description="Top of the actuation band, fraction of height")
    ] = 0.0,
    band_end: Annotated[
        float, Query(ge=0, le=1, description="Bottom of the actuation band, fraction of height")
    ] = 1.0,
    threshold: Annotated[
        float, Query(ge=0, le=1, description="Weed fraction of a lane that turns it on")
    ] = 0.01,
    plant_vote: Annotated[
        bool | None,
        Query(description="One class per plant region (default: the bundle's plant_vote)"),
    ] = None,
) -> Response:
    if band_end <= band_start:
        raise bad_parameter(f"band_end ({band_end}) must be greater than band_start ({band_start})")
    segmented = await segment_upload(request, settings, batcher, ticket, plant_vote)
    labels = segmented.labels
    height, width = labels.shape
    names = [c.name for c in segmented.result.handle.predictor.classes]
    weed = labels == names.index("weed") if "weed" in names else np.zeros_like(labels, bool)
    band = (int(round(band_start * height)), max(int(round(band_end * height)), 1))
    body = LanesResponse(
        model=segmented.result.handle.version,
        width=width,
        height=height,
        band=band,
        threshold=threshold,
        lanes=lane_decisions(weed, lanes, band, threshold),
        timings_ms={k: round(v, 3) for k, v in segmented.timings_ms.items()},
    )
    return Response(
        body.model_dump_json(), media_type="application/json", headers=timing_headers(segmented, {})
    )
