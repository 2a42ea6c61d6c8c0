"""POST /v1/segment: the class map as a PNG, JSON (fractions, mask, weed instances) or overlay."""

from __future__ import annotations

import base64
import time
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from weedseg.service.deps import BatcherDep, SettingsDep, TicketDep, require_api_key
from weedseg.service.routes.openapi import IMAGE_BODY, IMAGE_ERRORS
from weedseg.service.schemas import ClassOut, CocoRle, SegmentResponse, WeedInstance
from weedseg.service.segment_request import Segmented, segment_upload, timing_headers

from weedseg.imageio import encode_image

router = APIRouter(tags=["segment"], dependencies=[Depends(require_api_key)])

# 100 m per pixel: coarser than any camera that could show a weed; larger values only overflow
# the areas in cm2 (area_px * gsd**2).
MAX_GSD_CM = 10_000.0
OutputFormat = Literal["png", "json", "overlay"]
MaskEncoding = Literal["png", "rle", "none"]


def class_header(classes) -> str:
    """`0=soil,1=crop,2=weed`: what the PNG's pixel values mean."""
    return ",".join(f"{i}={c.name}" for i, c in enumerate(classes))


def coco_rle(labels: np.ndarray, num_classes: int, names: list[str]) -> dict[str, CocoRle]:
    """One COCO RLE (compressed counts string) per class of labels [H, W]."""
    from pycocotools import mask as coco_mask

    height, width = labels.shape
    out = {}
    for class_id in range(num_classes):
        binary = np.asfortranarray((labels == class_id).astype(np.uint8))
        rle = coco_mask.encode(binary)
        out[names[class_id]] = CocoRle(size=(height, width), counts=rle["counts"].decode("ascii"))
    return out


def build_json(
    segmented: Segmented,
    mask: MaskEncoding,
    min_area: int,
    gsd: float | None,
    polygons: bool,
) -> SegmentResponse:
    """The JSON answer; runs in a worker thread (encoding and connected components)."""
    from weedseg.infer.analysis import weed_instances

    predictor = segmented.result.handle.predictor
    classes = list(predictor.classes)
    names = [c.name for c in classes]
    labels = segmented.labels
    weeds = []
    if "weed" in names:
        weeds = weed_instances(labels, names.index("weed"), min_area, gsd, polygons)
    mask_png = mask_rle = None
    if mask == "png":
        mask_png = base64.b64encode(encode_image(labels, ".png")).decode("ascii")
    elif mask == "rle":
        mask_rle = coco_rle(labels, len(classes), names)
    return SegmentResponse(
        model=segmented.result.handle.version,
        width=int(labels.shape[1]),
        height=int(labels.shape[0]),
        classes=[ClassOut(id=i, name=c.name, color=c.color) for i, c in enumerate(classes)],
        fractions=segmented.result.prediction.fractions,
        mask_encoding=mask,
        mask_png=mask_png,
        mask_rle=mask_rle,
        weed_count=len(weeds),
        weeds=[WeedInstance(**w) for w in weeds],
        timings_ms={k: round(v, 3) for k, v in segmented.timings_ms.items()},
    )


def render_overlay(segmented: Segmented) -> bytes:
    from weedseg.infer.render import overlay

    classes = segmented.result.handle.predictor.classes
    return encode_image(overlay(segmented.image, segmented.labels, classes), ".jpg", quality=85)


@router.post(
    "/v1/segment",
    summary="Segment one image into crop / weed / soil",
    response_model=SegmentResponse,
    responses={
        200: {
            "description": "format=json (below), format=png: the class-index PNG (class ids in "
            "X-Weedseg-Classes), format=overlay: a JPEG for people",
            "content": {"image/png": {}, "image/jpeg": {}},
        },
        **IMAGE_ERRORS,
    },
    openapi_extra=IMAGE_BODY,
)
async def segment(
    request: Request,
    settings: SettingsDep,
    batcher: BatcherDep,
    ticket: TicketDep,
    output: Annotated[
        OutputFormat, Query(alias="format", description="png, json or overlay")
    ] = "json",
    mask: Annotated[MaskEncoding, Query(description="format=json: png, rle or none")] = "png",
    gsd: Annotated[
        float | None,
        Query(gt=0, le=MAX_GSD_CM, description="Ground sampling distance, cm per pixel"),
    ] = None,
    min_area: Annotated[
        int | None, Query(ge=1, description="Smallest weed instance in pixels")
    ] = None,
    polygons: Annotated[bool, Query(description="Include each weed's outline")] = False,
    plant_vote: Annotated[
        bool | None,
        Query(description="One class per plant region (default: the bundle's plant_vote)"),
    ] = None,
) -> Response:
    segmented = await segment_upload(request, settings, batcher, ticket, plant_vote)
    started = time.perf_counter()
    if output == "json":
        area = min_area or settings.min_weed_area_px
        body = await run_in_threadpool(build_json, segmented, mask, area, gsd, polygons)
        encode = {"encode": (time.perf_counter() - started) * 1000.0}
        body.timings_ms.update({k: round(v, 3) for k, v in encode.items()})
        return Response(
            body.model_dump_json(),
            media_type="application/json",
            headers=timing_headers(segmented, encode),
        )
    if output == "png":
        data = await run_in_threadpool(encode_image, segmented.labels, ".png")
        media = "image/png"
    else:
        data = await run_in_threadpool(render_overlay, segmented)
        media = "image/jpeg"
    headers = timing_headers(segmented, {"encode": (time.perf_counter() - started) * 1000.0})
    headers["X-Weedseg-Classes"] = class_header(segmented.result.handle.predictor.classes)
    return Response(data, media_type=media, headers=headers)
