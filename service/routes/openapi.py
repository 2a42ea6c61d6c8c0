"""OpenAPI fragments shared by the routes that take an image (read by hand for size limits)."""

from __future__ import annotations

from typing import Any

from weedseg.service.schemas import ErrorBody
from weedseg.service.uploads import IMAGE_TYPES

# The body is streamed and size-checked by hand, so FastAPI cannot infer it: describe it here.
IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The image: multipart field `file`, or the raw bytes with an image type.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            **{t: {"schema": {"type": "string", "format": "binary"}} for t in IMAGE_TYPES},
        },
    }
}

IMAGE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Undecodable, truncated or empty image"},
    401: {"model": ErrorBody, "description": "Missing or wrong API key (when keys are set)"},
    413: {"model": ErrorBody, "description": "Body or pixel count over the server's limit"},
    415: {"model": ErrorBody, "description": "Unsupported content type"},
    422: {"model": ErrorBody, "description": "Invalid query parameter"},
    503: {"model": ErrorBody, "description": "Queue full (see Retry-After) or no model yet"},
}
